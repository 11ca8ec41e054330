"""``urls verify`` and ``config check`` on the URLs of the parity tables.

``urls verify`` prints the request each shoutrrr or Apprise example would
make, and names every accepted key eventbus does not act on; ``config check``
names the same keys. Secrets stay masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eventbus.cli import cli

from . import test_apprise, test_parity_chat, test_parity_push
from .parity import Case, first_request, made

CASES = [
    *test_parity_chat.ACCEPTED,
    *test_parity_push.ACCEPTED,
    *test_apprise.ACCEPTED,
]


def _item(param: Any) -> Case:
    [item] = param.values
    assert isinstance(item, Case)
    return item


@pytest.mark.parametrize("item", [pytest.param(_item(p), id=p.id) for p in CASES])
def test_verify_prints_the_request(item: Case) -> None:
    result = CliRunner().invoke(cli, ["urls", "verify", "--no-body", item.url])
    assert result.exit_code == 0, result.output
    request = first_request(made(item.url))
    # verify's sample message has the delivery id dlv_sample (in Matrix's txn id)
    shown = request.safe_url().replace("dlv_1", "dlv_sample")
    assert f"{request.method} {shown}" in result.output
    assert result.output.count("warning:") == len(item.warns)
    for needle in item.warns:
        assert needle in result.output
    if item.url.split(":", 1)[0] in {"tgram", "pover", "mmost", "workflow", "ntfys"}:
        assert "apprise:" in result.output


def test_verify_masks_the_pushover_encryption_key() -> None:
    key = "0123456789abcdef" * 4
    result = CliRunner().invoke(
        cli, ["urls", "verify", f"pushover://:apptoken@usertoken?encryptionkey={key}"]
    )
    assert result.exit_code == 0, result.output
    assert key not in result.output
    assert "encryptionkey = ***" in result.output


def test_config_check_names_unhonoured_keys(tmp_path: Path) -> None:
    config = tmp_path / "eventbus.yaml"
    config.write_text(
        "channels:\n"
        "  - name: phone\n"
        f"    url: pushover://:apptoken@usertoken?key={'ab' * 32}\n"
        "  - name: ops\n"
        "    url: tgram://123456789:abcdefg_hijklmnop/-1001/\n"
        "subscriptions: []\n"
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "config", "check"])
    assert result.exit_code == 0, result.output
    assert "warning: pushover URL key 'key' is accepted but not honoured" in result.output
    assert "ab" * 32 not in result.output
    assert "ops" in result.output and "telegram" in result.output


def test_config_check_points_a_broken_apprise_url_at_urls_verify() -> None:
    from consumers.channels.registry import channel_problems
    from eventbus.settings import Settings

    settings = Settings(channels=[{"name": "phone", "url": "pover://tokenonly"}])
    [(_, message, fix)] = list(channel_problems(settings))
    assert "USER_KEY@API_TOKEN" in message
    assert fix == "check it with: eventbus urls verify '<the pover URL>'"


@pytest.mark.parametrize(
    ("url", "warning"),
    [
        pytest.param(
            "zulip://bot%40example.com:abcdefgh@chat.example.com/?stream=ops&unknownkey=1",
            "'unknownkey' are ignored",
            id="zulip-unknown-key",
        ),
        pytest.param(
            "rocketchat://user@chat.example.com/tokenA/tokenB/%23ops?foo=bar",
            "'foo' have no effect",
            id="rocketchat-any-key",
        ),
    ],
)
def test_verify_prints_the_services_own_warnings(url: str, warning: str) -> None:
    # A service's own advice (not only the URL table's) reaches urls verify,
    # as it reaches config check.
    result = CliRunner().invoke(cli, ["urls", "verify", "--no-body", url])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and warning in result.output
    assert "##" not in result.output, "a %23-encoded channel is named once"
