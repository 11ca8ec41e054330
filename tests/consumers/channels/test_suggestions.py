"""``config check`` on channels: "did you mean" for misspelt types and options,
and "fix:" hints that point at a command which takes the URL."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from consumers.channels._suggest import closest
from consumers.channels.registry import channel_problems
from eventbus.settings import Settings
from tests.eventbus.cli_support import run

TG = "123456:ABCdefGHIjklMNOpqr"


def problems(*channels: dict[str, Any]) -> list[tuple[str, str]]:
    settings = Settings(channels=list(channels))
    return [(message, fix) for _, message, fix in channel_problems(settings)]


@pytest.mark.parametrize(
    ("channel", "fix"),
    [
        pytest.param(
            {"type": "webhok", "url": "https://h.example/in"},
            "did you mean 'webhook'?",
            id="type",
        ),
        pytest.param(
            {"type": "telegram", "token": TG, "chat_id": "42"},
            "did you mean 'bot_token'?",
            id="telegram-token",
        ),
        pytest.param(
            {"type": "telegram", "bot_token": TG, "chat_id": "42", "parse_mod": "HTML"},
            "did you mean 'parse_mode'?",
            id="option",
        ),
        pytest.param(
            {"type": "webhook", "url": "https://h.example/in", "secrte": "whsec_x"},
            "did you mean 'secret'?",
            id="webhook-option",
        ),
        pytest.param({"type": "console", "timout": "5s"}, "did you mean 'timeout'?", id="common"),
        pytest.param(
            {"url": "ntfy://ntfy.example.com/alerts", "rate_limt": {"rate": 1}},
            "did you mean 'rate_limit'?",
            id="common-on-url-channel",
        ),
    ],
)
def test_misspelt_names_get_the_closest_known_one(channel: dict[str, Any], fix: str) -> None:
    ((message, found),) = problems({"name": "ch", **channel})
    assert found == fix, message


def test_nothing_close_suggests_nothing() -> None:
    assert closest("colour_scheme", ["bot_token", "chat_id"]) is None
    ((message, fix),) = problems({"name": "ch", "type": "carrier-pigeon"})
    assert "unknown channel type 'carrier-pigeon'" in message and fix == ""


def test_url_hints_only_for_urls_that_urls_verify_takes() -> None:
    ((_, webhook_fix),) = problems({"name": "w", "type": "webhook", "url": "ftp://h.example/x"})
    assert webhook_fix == "check it with: eventbus urls verify '<the webhook URL>'"
    ((_, ntfy_fix),) = problems({"name": "n", "url": "ntfy://ntfy.example.com/alerts?x=1"})
    assert ntfy_fix == "check it with: eventbus urls verify '<the ntfy URL>'"


def test_urls_verify_takes_a_plain_webhook_url_and_shows_the_signed_request() -> None:
    token = "Tok3nInThePath9x"
    result = run("urls", "verify", f"https://hooks.example.com/services/T0/{token}?sig=qs3cret")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "service:    webhook" in out
    assert "target:     https://hooks.example.com/services/***" in out
    assert "1. POST https://hooks.example.com/services/***" in out
    assert "webhook-id: dlv_sample" in out and "webhook-signature: ***" in out
    assert "webhook-timestamp: " in out and "body (application/json):" in out
    assert token not in out and "qs3cret" not in out


def test_config_check_prints_the_suggestions(tmp_path: Path) -> None:
    path = tmp_path / "eventbus.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            channels:
              - name: hook
                type: webhok
                url: https://h.example/in
              - name: tg
                type: telegram
                token: "{TG}"
                chat_id: "42"
            """
        )
    )
    result = run("--config", str(path), "config", "check")
    assert result.exit_code == 2
    assert "(fix: did you mean 'webhook'?)" in result.output
    assert "(fix: did you mean 'bot_token'?)" in result.output
    assert TG not in result.output
