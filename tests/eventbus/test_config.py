"""Loading the YAML configuration: sources, ${VAR}, and every `config check` problem."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from consumers.channels.registry import channel_problems
from consumers.validation import subscription_problems
from eventbus.config import load_settings
from eventbus.errors import ConfigError, ConfigProblem
from eventbus.schema import config_schema
from eventbus.settings import Settings, redact_url

ROOT = Path(__file__).resolve().parents[2]

CHANNELS = """\
channels:
  - name: console
    type: console
"""


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "eventbus.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def problems(path: Path, environ: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=environ or {}, channel_validator=channel_problems)
    assert info.value.problems
    for problem in info.value.problems:
        assert str(problem) in str(info.value)
    return info.value.problems


# -- sources ------------------------------------------------------------------------


def test_yaml_values_are_loaded(write) -> None:  # type: ignore[no-untyped-def]
    path = write("""\
        broker:
          redis_url: redis://redis.internal:6379/2
          prefix: from-yaml
        consumer:
          batch_size: 10
          claim_idle: 2m
        """)
    settings = load_settings(path, environ={})
    assert settings.broker.redis_url.get_secret_value() == "redis://redis.internal:6379/2"
    assert settings.broker.prefix == "from-yaml"
    assert settings.consumer.batch_size == 10
    assert settings.consumer.claim_idle == 120.0


def test_environment_overrides_beat_yaml(write, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    path = write("""\
        broker:
          redis_url: redis://redis.internal:6379/2
          prefix: from-yaml
        consumer:
          batch_size: 10
        """)
    monkeypatch.setenv("EVENTBUS_BROKER__PREFIX", "from-env")
    monkeypatch.setenv("EVENTBUS_CONSUMER__BLOCK", "250ms")
    monkeypatch.setenv("EVENTBUS_SECURITY__ALLOW_PRIVATE_TARGETS", "true")
    settings = load_settings(path, environ={})
    assert settings.broker.prefix == "from-env"
    # the rest of the YAML section survives (nested merge, not replacement)
    assert settings.broker.redis_url.get_secret_value() == "redis://redis.internal:6379/2"
    assert settings.consumer.batch_size == 10
    assert settings.consumer.block == 0.25
    assert settings.security.allow_private_targets is True


def test_invalid_environment_value_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTBUS_CONSUMER__BATCH_SIZE", "many")
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={})
    [problem] = info.value.problems
    assert "consumer.batch_size" in problem.message
    assert "many" in problem.message


def test_config_path_from_eventbus_config(write) -> None:  # type: ignore[no-untyped-def]
    path = write("broker:\n  prefix: via-env-path\n")
    settings = load_settings(None, environ={"EVENTBUS_CONFIG": str(path)})
    assert settings.broker.prefix == "via-env-path"
    assert load_settings(None, environ={}).broker.prefix == "eventbus"


def test_overrides_beat_the_environment(write, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    path = write("broker:\n  prefix: from-yaml\n")
    monkeypatch.setenv("EVENTBUS_BROKER__PREFIX", "from-env")
    settings = load_settings(path, environ={}, broker={"prefix": "from-cli"})
    assert settings.broker.prefix == "from-cli"


def test_empty_file_gives_defaults(write) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(write(""), environ={})
    assert settings == Settings()


# -- ${VAR} -------------------------------------------------------------------------


def test_variables_are_substituted_from_environ(write) -> None:  # type: ignore[no-untyped-def]
    path = write("""\
        broker:
          redis_url: redis://:${REDIS_PASSWORD}@${REDIS_HOST}:6379/0
          prefix: ${PREFIX}-x
        consumer:
          batch_size: ${BATCH}
        """)
    env = {"REDIS_PASSWORD": "pw", "REDIS_HOST": "redis.internal", "PREFIX": "p1", "BATCH": "7"}
    settings = load_settings(path, environ=env)
    assert settings.broker.redis_url.get_secret_value() == "redis://:pw@redis.internal:6379/0"
    assert settings.broker.prefix == "p1-x"
    assert settings.consumer.batch_size == 7


def test_double_dollar_is_a_literal(write) -> None:  # type: ignore[no-untyped-def]
    path = write("""\
        channels:
          - name: hook
            type: console
            template: "$${NOT_A_VAR} and ${SET}"
        """)
    settings = load_settings(path, environ={"SET": "yes", "NOT_A_VAR": "no"})
    assert settings.channels[0].options["template"] == "${NOT_A_VAR} and yes"


def test_unset_variable_is_a_problem(write) -> None:  # type: ignore[no-untyped-def]
    path = write("""\
        broker:
          prefix: eventbus
          redis_url: redis://:${REDIS_PASSWORD}@localhost:6379/0
        """)
    [problem] = problems(path, environ={"OTHER": "x"})
    assert problem.where == f"{path}:3"
    assert "${REDIS_PASSWORD}" in problem.message
    assert "not set" in problem.message
    assert "export REDIS_PASSWORD=" in problem.fix
    assert "$${REDIS_PASSWORD}" in problem.fix


def test_process_environment_is_used_when_environ_is_not_given(
    write,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EB_TEST_PREFIX_VALUE", "from-process")
    path = write("broker:\n  prefix: ${EB_TEST_PREFIX_VALUE}\n")
    assert load_settings(path).broker.prefix == "from-process"


# -- every problem `config check` reports --------------------------------------------

CASES = [
    pytest.param("brokr:\n  prefix: x\n", 1, "unknown key 'brokr'", id="unknown-top-level"),
    pytest.param("broker:\n  prefx: x\n", 2, "unknown key 'broker.prefx'", id="unknown-nested"),
    pytest.param(
        CHANNELS
        + "subscriptions:\n  - name: s\n    team: '*'\n    events: ['*']\n"
        + "    channels: [console]\n    evnts: [x]\n",
        9,
        "unknown key 'subscriptions[0].evnts'",
        id="unknown-in-subscription",
    ),
    pytest.param(
        "http:\n  tokens:\n    - name: t\n      token: abc\n      team: [x]\n",
        5,
        "unknown key 'http.tokens[0].team'",
        id="unknown-in-token",
    ),
    pytest.param(
        CHANNELS + "  - name: console\n    type: console\n",
        4,
        "duplicate channel name 'console'",
        id="duplicate-channel",
    ),
    pytest.param(
        CHANNELS
        + "subscriptions:\n"
        + "  - {name: s, team: '*', events: ['*'], channels: [console]}\n"
        + "  - {name: s, team: '*', events: ['*'], channels: [console]}\n",
        6,
        "duplicate subscription name 's'",
        id="duplicate-subscription",
    ),
    pytest.param(
        CHANNELS
        + "subscriptions:\n  - name: s\n    team: '*'\n    events: ['*']\n"
        + "    channels:\n      - console\n      - pager\n",
        10,
        "names channel 'pager', which does not exist",
        id="missing-channel",
    ),
    pytest.param(
        "channels:\n  - name: c\n    type: carrier-pigeon\n",
        2,
        "unknown channel type 'carrier-pigeon'",
        id="unknown-channel-type",
    ),
    pytest.param(
        "channels:\n  - name: c\n    url: 'nosuch://host/x'\n",
        2,
        "unknown channel type 'nosuch'",
        id="unknown-url-scheme",
    ),
    pytest.param(
        "channels:\n  - name: c\n    url: 'discord://token@'\n",
        2,
        "discord",
        id="malformed-url",
    ),
    pytest.param(
        "channels:\n  - name: c\n    enabled: true\n",
        2,
        "has neither 'type' nor 'url'",
        id="channel-without-type",
    ),
    pytest.param(
        CHANNELS
        + "subscriptions:\n  - name: s\n    team: '*'\n    events: ['Capsule.*']\n"
        + "    channels: [console]\n",
        7,
        "event pattern 'Capsule.*' is not valid",
        id="bad-glob",
    ),
    pytest.param(
        CHANNELS
        + "subscriptions:\n  - name: s\n    team: '*'\n    events: [capsule.state.changed]\n"
        + "    channels: [console]\n",
        7,
        "transient (never delivered)",
        id="transient-type-subscribed",
    ),
    pytest.param(
        "catalog:\n  strict: true\n"
        + CHANNELS
        + "subscriptions:\n  - name: s\n    team: '*'\n    events: [billing.paid]\n"
        + "    channels: [console]\n",
        9,
        "not in the catalog (catalog.strict is on)",
        id="unknown-type-strict",
    ),
    pytest.param(
        "consumer:\n  claim_idle: 5 fortnights\n",
        2,
        "'5 fortnights' is not a duration",
        id="invalid-duration",
    ),
    pytest.param(
        CHANNELS
        + "subscriptions:\n  - name: s\n    team: '*'\n    events: ['*']\n"
        + "    channels: [console]\n    retry: [5s, soon]\n",
        9,
        "'soon' is not a duration",
        id="invalid-retry-duration",
    ),
    pytest.param("broker:\n  prefix: [unclosed\n", 3, "not valid YAML", id="yaml-syntax"),
    pytest.param("broker:\n\tprefix: x\n", 2, "not valid YAML", id="yaml-tab"),
    pytest.param("- a\n- b\n", 1, "must be a mapping of sections", id="not-a-mapping"),
    pytest.param(
        "broker:\n  prefix: a\n  prefix: b\n", 3, "'broker.prefix' appears twice", id="dup-key"
    ),
    pytest.param("consumer:\n  batch_size: lots\n", 2, "consumer.batch_size", id="wrong-type"),
    pytest.param(
        "subscriptions:\n  - name: s\n    team: '*'\n    events: ['*']\n",
        2,
        "'subscriptions[0].channels' is required",
        id="missing-required",
    ),
    pytest.param(
        "broker:\n  prefix: !!python/name:os.system\n", 2, "broker.prefix", id="unsafe-tag"
    ),
    pytest.param("broker:\n  prefix: 2024-13-45\n", 2, "broker.prefix", id="bad-yaml-date"),
]


@pytest.mark.parametrize(("text", "line", "needle"), CASES)
def test_each_problem_has_file_line_and_a_useful_message(
    write,  # type: ignore[no-untyped-def]
    text: str,
    line: int,
    needle: str,
) -> None:
    path = write(text)
    found = problems(path)
    problem = found[0]
    assert problem.where == f"{path}:{line}", problem
    assert needle in problem.message, problem
    # one mistake, one place (an unreadable value may also fail its field's check)
    assert {p.where for p in found} == {problem.where}, found


def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    [problem] = problems(path)
    assert problem.where == str(path)
    assert "cannot read the file" in problem.message
    assert "--config" in problem.fix


def test_fixes_say_what_to_do(write) -> None:  # type: ignore[no-untyped-def]
    sub = "subscriptions:\n  - name: s\n    team: '*'\n    events: ['*']\n"
    [missing] = problems(write(CHANNELS + sub + "    channels: [pager]\n"))
    assert missing.fix == "define it under channels (known: console)"
    [unknown] = problems(write(CHANNELS + sub + "    channels: [console]\n    extra: 1\n"))
    assert unknown.fix == "remove it or check its spelling"
    [dup] = problems(write("broker:\n  prefix: a\n  prefix: b\n"))
    assert dup.fix == "keep one of them"


def test_several_problems_are_reported_at_once(write) -> None:  # type: ignore[no-untyped-def]
    path = write("""\
        channels:
          - name: hook
            type: console
          - name: hook
            type: console
          - name: pigeon
            type: carrier-pigeon
        subscriptions:
          - name: s1
            team: "*"
            events: ["capsule.*"]
            channels: [hook, pager]
          - name: s1
            team: "*"
            events: [capsule.state.changed]
            channels: [hook]
        """)
    found = problems(path)
    by_line = {p.where: p.message for p in found}
    assert by_line == {
        f"{path}:4": "duplicate channel name 'hook'",
        f"{path}:6": by_line.get(f"{path}:6", "missing"),
        f"{path}:12": "subscription 's1' names channel 'pager', which does not exist",
        f"{path}:13": "duplicate subscription name 's1'",
        f"{path}:15": by_line.get(f"{path}:15", "missing"),
    }
    assert "carrier-pigeon" in by_line[f"{path}:6"]
    assert "transient" in by_line[f"{path}:15"]


def test_model_errors_from_several_sections_are_reported_at_once(write) -> None:  # type: ignore[no-untyped-def]
    path = write("""\
        broker:
          prefx: x
        consumer:
          claim_idle: soon
        surprise: true
        """)
    found = problems(path)
    assert {p.where for p in found} == {f"{path}:2", f"{path}:4", f"{path}:5"}


# -- secrets ---------------------------------------------------------------------------

SECRETS = ["hunter2pw", "SECRETTOKEN", "whsec_c2VjcmV0c2VjcmV0c2VjcmV0", "tok3n-v4lue", "s3cr3t"]


def test_secrets_never_appear_in_problems(write) -> None:  # type: ignore[no-untyped-def]
    path = write("""\
        broker:
          redis_url: redis://:hunter2pw@redis.internal:6379/0
          prefix: ok
          stream_maxlen: 5
        http:
          tokens:
            - name: dash
              token: tok3n-v4lue
              teams: []
            - name: broken
              token: [tok3n-v4lue]
        channels:
          - name: hook
            type: console
            secret: whsec_c2VjcmV0c2VjcmV0c2VjcmV0
          - name: tg
            url: telegram://123456:SECRETTOKEN@telegram
          - name: bad
            url: nosuch://user:s3cr3t@host
          - telegram://123456:SECRETTOKEN@telegram?chats=1
          - name: tg
            url: 12345
        subscriptions:
          - name: s
            team: "*"
            events: ["*"]
            channels: [hook, missing]
        """)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={}, channel_validator=channel_problems)
    text = str(info.value) + "".join(f"{p.where}{p.message}{p.fix}" for p in info.value.problems)
    assert len(info.value.problems) >= 4
    for secret in SECRETS:
        assert secret not in text


def test_secrets_in_channel_problems_are_not_shown(write) -> None:  # type: ignore[no-untyped-def]
    path = write("""\
        channels:
          - name: tg
            url: telegram://123456:SECRETTOKEN@telegram
          - name: bad
            url: nosuch://user:s3cr3t@host
          - name: d
            url: discord://SECRETTOKEN@
        """)
    found = problems(path)
    assert len(found) == 3
    text = " ".join(str(p) for p in found)
    for secret in SECRETS:
        assert secret not in text


def test_secrets_never_appear_in_repr(write) -> None:  # type: ignore[no-untyped-def]
    path = write("""\
        broker:
          redis_url: redis://:hunter2pw@redis.internal:6379/0
        http:
          tokens:
            - name: dash
              token: tok3n-v4lue
        channels:
          - name: hook
            type: console
            secret: whsec_c2VjcmV0c2VjcmV0c2VjcmV0
            password: s3cr3t
          - name: tg
            url: telegram://123456:SECRETTOKEN@telegram?chats=-100123
        """)
    settings = load_settings(path, environ={})
    assert settings.channels[0].options["secret"].startswith("whsec_")
    for text in (repr(settings), str(settings), repr(settings.channels), repr(settings.broker)):
        for secret in SECRETS:
            assert secret not in text
    assert "hook" in repr(settings.channels[0])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("redis://localhost:6379/0", "redis://localhost:6379/0", id="plain"),
        pytest.param(
            "redis://:hunter2pw@localhost:6379/0", "redis://:***@localhost:6379/0", id="password"
        ),
        pytest.param(
            "redis://user:hunter2pw@localhost/0", "redis://user:***@localhost/0", id="user-pass"
        ),
        pytest.param(
            "telegram://SECRETTOKEN@telegram?chats=1",
            "telegram://***@telegram?chats=1",
            id="token-as-user",
        ),
        pytest.param("redis://:hunter2pw@[::1]:6379/0", "redis://:***@[::1]:6379/0", id="ipv6"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("redis://:hunter2pw@localhost:port/0", id="bad-port"),
        pytest.param("redis://localhost:6379/0?password=hunter2pw", id="query-password"),
        pytest.param("redis://[::1:hunter2pw@x/0", id="unparseable"),
    ],
)
def test_redact_url_never_leaks_or_raises(url: str) -> None:
    assert "hunter2pw" not in redact_url(url)


# -- the committed files ----------------------------------------------------------------


def test_committed_json_schema_is_current() -> None:
    committed = json.loads((ROOT / "config" / "eventbus.schema.json").read_text())
    assert committed == config_schema(), (
        "config/eventbus.schema.json is stale: run "
        "python -m eventbus.schema > config/eventbus.schema.json"
    )


def test_schema_describes_the_sections() -> None:
    schema = config_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {
        "broker",
        "consumer",
        "http",
        "security",
        "catalog",
        "channels",
        "subscriptions",
    } <= set(schema["properties"])
    assert schema.get("additionalProperties") is False


def test_example_configuration_loads_cleanly() -> None:
    settings = load_settings(
        ROOT / "config" / "eventbus.example.yaml", environ={}, channel_validator=channel_problems
    )
    assert [c.name for c in settings.channels] == ["console"]
    assert [s.name for s in settings.subscriptions] == ["everything-to-console"]
    assert settings.consumer.retry_schedule == [5, 300, 1800, 7200, 18000, 36000, 36000]


def test_model_and_cross_field_problems_are_reported_together(write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        CHANNELS
        + "subscriptions:\n  - name: s\n    team: '*'\n    events: ['*']\n"
        + "    channels: [pager]\n    extra: 1\n"
    )
    assert {p.where for p in problems(path)} == {f"{path}:8", f"{path}:9"}


# -- hostile YAML (issue 12, item 5) ---------------------------------------------------


def _laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly(write) -> None:  # type: ignore[no-untyped-def]
    # 360 bytes that expand to 9**9 strings: 34 s and 1.3 GB before, or out of memory.
    path = write(_laughs(9))
    started = time.perf_counter()
    [problem] = problems(path)
    assert time.perf_counter() - started < 1.0
    assert "expand to more than 10,000 values" in problem.message
    assert problem.where.startswith(f"{path}:")


def test_recursive_alias_is_a_problem_not_a_crash(write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        """\
        channels: &loop
          - name: console
            type: console
            again: *loop
        """
    )
    [problem] = problems(path)
    assert "recursive alias" in problem.message
    assert problem.where == f"{path}:1"


def test_small_anchors_still_work(write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        """\
        channels:
          - name: console
            type: console
        subscriptions:
          - name: a
            team: team-1
            events: &everything ["*"]
            channels: &to [console]
          - name: b
            team: team-2
            events: *everything
            channels: *to
        """
    )
    settings = load_settings(path, environ={})
    assert [s.events for s in settings.subscriptions] == [["*"], ["*"]]


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("127.0.0.1:6379", "must start with redis://", id="no-scheme"),
        pytest.param("http://127.0.0.1:6379/0", "must start with redis://", id="http"),
        pytest.param("redis://host:notaport/0", "not a valid URL", id="bad-port"),
        pytest.param("redis://host:6379/zero", "database number", id="bad-db"),
        pytest.param("redis:///0", "names no host", id="no-host"),
    ],
)
def test_malformed_redis_url_is_a_config_problem(
    url: str, needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # These passed config check and then crashed every other command (issue 12, item 13).
    monkeypatch.setenv("EVENTBUS_BROKER__REDIS_URL", url)
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={})
    [problem] = info.value.problems
    assert "broker.redis_url" in problem.message and needle in problem.message
    assert "Value error" not in problem.message


def test_redis_url_problem_never_shows_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTBUS_BROKER__REDIS_URL", "redis://:hunter22@h:x/0")
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={})
    assert "hunter22" not in str(info.value) and "***" in str(info.value)


# -- one pass, with suggestions (issue 12, item 16) ------------------------------------


def test_every_problem_is_reported_in_one_pass(write) -> None:  # type: ignore[no-untyped-def]
    # Unset variables and bad durations used to hide channel and template errors.
    path = write(
        """\
        consumer:
          bach_size: 10
          block: 5 parsecs
        channels:
          - name: hook
            type: webhook
            url: https://hooks.example.com/x
            secret: not-a-whsec
          - name: console
            type: console
            timeout: forever
        subscriptions:
          - name: s
            team: t
            events: ["*"]
            channels: [hook]
            title_template: "{{ x"
            body_template: "${UNSET_FOR_TEST}"
        """
    )
    with pytest.raises(ConfigError) as info:
        load_settings(
            path,
            environ={},
            channel_validator=channel_problems,
            subscription_validator=subscription_problems,
        )
    found = {(p.where, p.message.split(":")[0]) for p in info.value.problems}
    text = "\n".join(str(p) for p in info.value.problems)
    assert "did you mean 'batch_size'?" in text
    assert "'consumer.block'" in text and "'channels[1].timeout'" in text
    assert "${UNSET_FOR_TEST}" in text
    assert "not a valid Standard Webhooks secret" in text
    assert "syntax error on line 1" in text
    assert f"{path}:5" in {where for where, _ in found}  # the webhook, at its own line
