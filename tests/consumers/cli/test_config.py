"""``eventbus config check``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.eventbus.cli_support import no_secrets, run

# -- config check -------------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str) -> Path:
        path = tmp_path / "eventbus.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


GOOD = """\
broker:
  redis_url: redis://:hunter2pw@redis.internal:6379/0
  prefix: checked
http:
  tokens:
    - name: dash
      token: tok3n-v4lue
channels:
  - name: console
    type: console
  - name: ops-chat
    url: telegram://123456:SECRETTOKEN@telegram?chats=-100123
subscriptions:
  - name: capsule-failures
    team: team-1
    events: ["capsule.*", host.down]
    outcomes: [error]
    channels: [console, ops-chat]
  - name: "off"
    team: "*"
    events: ["*"]
    channels: [console]
    enabled: false
"""


def test_config_check_ok_prints_a_redacted_summary(config_file) -> None:  # type: ignore[no-untyped-def]
    path = config_file(GOOD)
    for args in (
        ("--config", str(path), "config", "check"),
        ("config", "check", "--config", str(path)),
    ):
        result = run(*args)
        assert result.exit_code == 0, result.output
        out = result.output
        assert "configuration OK" in out
        assert "redis://:***@redis.internal:6379/0" in out
        assert "prefix=checked" in out
        assert "ops-chat" in out and "telegram" in out
        assert "capsule-failures" in out
        assert (
            "receives: capsule.create, capsule.destroy, capsule.pause, capsule.resume, host.down"
            in out
        )
        assert "[disabled]" in out
        no_secrets(out)


def test_config_check_from_eventbus_config(config_file) -> None:  # type: ignore[no-untyped-def]
    path = config_file(GOOD)
    result = run("config", "check", env={"EVENTBUS_CONFIG": str(path)})
    assert result.exit_code == 0, result.output
    assert str(path) in result.output


def test_config_check_example_file() -> None:
    example = Path(__file__).resolve().parents[3] / "config" / "eventbus.example.yaml"
    result = run("--config", str(example), "config", "check")
    assert result.exit_code == 0, result.output
    assert "everything-to-console" in result.output


def test_config_check_lists_every_problem_and_exits_2(config_file) -> None:  # type: ignore[no-untyped-def]
    path = config_file("""\
        broker:
          redis_url: redis://:hunter2pw@redis.internal:6379/0
        channels:
          - name: ops-chat
            url: telegram://123456:SECRETTOKEN@telegram
          - name: ops-chat
            type: console
          - name: pigeon
            url: nosuch://SECRETTOKEN@host
        subscriptions:
          - name: s
            team: team-1
            events: ["capsule.*"]
            channels: [ops-chat, pager]
        """)
    result = run("--config", str(path), "config", "check")
    assert result.exit_code == 2, result.output
    out = result.output
    assert "configuration problems:" in out
    assert f"{path}:6: duplicate channel name 'ops-chat'" in out
    assert f"{path}:4: channel 'ops-chat': telegram channel has no chat" in out
    assert f"{path}:8: channel 'pigeon': unknown channel type 'nosuch'" in out
    assert f"{path}:14: subscription 's' names channel 'pager'" in out
    assert out.count("\n  - ") == 4
    assert "configuration OK" not in out
    no_secrets(out)


def test_config_check_model_errors_exit_2(config_file) -> None:  # type: ignore[no-untyped-def]
    path = config_file("broker:\n  prefx: x\nconsumer:\n  claim_idle: soon\n")
    result = run("--config", str(path), "config", "check")
    assert result.exit_code == 2
    assert f"{path}:2: unknown key 'broker.prefx'" in result.output
    assert f"{path}:4: 'consumer.claim_idle'" in result.output


def test_config_check_missing_file_exits_2(tmp_path: Path) -> None:
    result = run("config", "check", "--config", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "cannot read the file" in result.output


# -- --config anywhere; no file (issue 12, item 15) -------------------------------------


@pytest.mark.integration
def test_config_option_works_after_any_command(config_file, redis_url: str, prefix: str) -> None:  # type: ignore[no-untyped-def]
    local = GOOD.replace("redis://:hunter2pw@redis.internal:6379/0", redis_url)
    path = config_file(local.replace("prefix: checked", f"prefix: {prefix}"))
    before = run("--config", str(path), "channels", "list")
    after = run("channels", "list", "--config", str(path))
    assert before.exit_code == after.exit_code == 0, after.output
    assert "ops-chat" in after.output and before.output == after.output


def test_commands_that_need_channels_say_when_there_is_no_file() -> None:
    for args in (("config", "check"), ("channels", "list")):
        result = run(*args, env={"EVENTBUS_CONFIG": ""})
        assert result.exit_code == 2
        assert "no configuration file" in result.output and "--config PATH" in result.output
        assert "configuration OK" not in result.output


# -- routing keys in the summary, overlaps (issue 13) ------------------------------------

ROUTING = """\
channels:
  - name: pagerduty
    type: console
  - name: ops-chat
    type: console
subscriptions:
  - name: pager
    team: team-1
    events: ["host.*", "backup.*"]
    min_severity: error
    where:
      metadata.region: [eu-west, eu-north]
      resource.type: host
      error: {regex: "disk|quota"}
      metadata.host: {glob: "db-*"}
      metadata.canary: {exists: false}
      metadata.version: 1.10
    cooldown: 1h
    cooldown_key: [event, resource.id]
    group_by: [team, event]
    group_wait: 30s
    group_interval: 5m
    channels: [pagerduty, ops-chat]
  - name: ops
    team: "*"
    events: ["*.down"]
    severities: [critical]
    channels: [ops-chat]
  - name: chatter
    team: "*"
    events: ["*"]
    severities: [info]
    channels: [ops-chat]
"""


def test_config_check_shows_routing_keys_by_their_yaml_names(config_file) -> None:  # type: ignore[no-untyped-def]
    result = run("config", "check", "--config", str(config_file(ROUTING)))
    assert result.exit_code == 0, result.output
    out = result.output
    for line in (
        "    min_severity: error",
        "    where:",
        "      metadata.region: [eu-west, eu-north]",
        "      resource.type: host",
        "      error: {regex: disk|quota}",
        "      metadata.host: {glob: db-*}",
        "      metadata.canary: {exists: false}",
        "      metadata.version: '1.10'",
        "    cooldown: 1h  cooldown_key: [event, resource.id]",
        "    group_by: [team, event]  group_wait: 30s  group_interval: 5m  digest_max_events: 50",
        "    severities: [critical]",
    ):
        assert line in out.splitlines(), line
    # routing keys left at their defaults are not shown
    assert out.count("cooldown:") == 1 and out.count("group_by:") == 1


def test_config_check_lists_overlapping_subscriptions_of_one_channel(config_file) -> None:  # type: ignore[no-untyped-def]
    out = run("config", "check", "--config", str(config_file(ROUTING))).output
    section = out.split("one delivery per channel", 1)[1].splitlines()[1:]
    # chatter keeps info only: it never meets pager (error and above) or ops (critical)
    assert section == [
        "  ops-chat: pager delivers, ops records merged (if their where filters both hold)"
    ]


def test_config_check_without_overlaps_says_nothing_of_them(config_file) -> None:  # type: ignore[no-untyped-def]
    out = run("config", "check", "--config", str(config_file(GOOD))).output
    assert "one delivery per channel" not in out


def test_config_check_names_the_real_stream_queue_and_channel_type(config_file) -> None:  # type: ignore[no-untyped-def]
    # Apprise's tgram:// is a telegram channel; the stream key carries its hash tag.
    path = config_file(
        """\
        broker:
          prefix: shown
        channels:
          - name: tg
            url: tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567890
        """
    )
    out = run("--config", str(path), "config", "check").output
    assert "stream={shown}:events  group=delivery" in out
    (line,) = [x for x in out.splitlines() if x.strip().startswith("tg ")]
    assert line.split()[1] == "telegram", line
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in out
    rabbit = run(
        "--config", str(path), "config", "check", env={"EVENTBUS_BROKER__KIND": "rabbitmq"}
    ).output
    assert "queue=shown.delivery" in rabbit and "exchange=shown.events" in rabbit
    assert "guest:guest" not in rabbit
    parts = run(
        "--config", str(path), "config", "check", env={"EVENTBUS_BROKER__PARTITIONS": "3"}
    ).output
    assert "stream={shown}:events (+2 partitions)" in parts
