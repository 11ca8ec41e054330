"""broker.kind and broker.amqp_url: defaults, validation, no password on show."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from eventbus.brokers.rabbitmq import RabbitMQ
from eventbus.config import load_settings
from eventbus.errors import ConfigError
from eventbus.settings import BrokerSettings, Settings


def test_redis_is_the_default_and_rabbitmq_has_a_local_default() -> None:
    broker = BrokerSettings()
    assert broker.kind == "redis"
    assert broker.amqp_url.get_secret_value() == "amqp://guest:guest@127.0.0.1:5672/"
    assert broker.amqp_url_redacted == "amqp://guest:***@127.0.0.1:5672/"


def test_the_environment_selects_rabbitmq(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTBUS_BROKER__KIND", "rabbitmq")
    monkeypatch.setenv("EVENTBUS_BROKER__AMQP_URL", "amqps://ops:hunter2@mq.internal:5671/ops")
    settings = Settings()
    assert settings.broker.kind == "rabbitmq"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    assert "hunter2" not in repr(RabbitMQ.from_settings(settings))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        pytest.param("redis://u:hunter2@host:6379/0", "must start with amqp://", id="scheme"),
        pytest.param("amqp://u:hunter2@:5672/", "names no host", id="no-host"),
        pytest.param("amqp://u:hunter2@host:99999/", "not a valid URL", id="bad-port"),
    ],
)
def test_a_bad_amqp_url_is_a_config_problem_without_its_password(
    url: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTBUS_BROKER__AMQP_URL", url)
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={})
    [problem] = info.value.problems
    assert "broker.amqp_url" in problem.message and says in problem.message
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="'redis' or 'rabbitmq'"):
        BrokerSettings(kind="kafka")
