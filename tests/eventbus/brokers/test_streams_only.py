"""broker.kind: rabbitmq is refused where only Redis Streams is built, never ignored."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from eventbus.cli import cli
from eventbus.errors import ConfigError
from eventbus.settings import Settings
from publishers import Publisher

RABBIT = {"EVENTBUS_BROKER__KIND": "rabbitmq"}


def test_the_publisher_refuses_rabbitmq_instead_of_writing_to_redis() -> None:
    with pytest.raises(ConfigError, match="runs on Redis Streams only"):
        Publisher(Settings(broker={"kind": "rabbitmq"}))


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--config", "config/eventbus.example.yaml", "run"], id="run"),
        pytest.param(["serve", "--port", "0"], id="serve"),
        pytest.param(["tail", "--count", "1"], id="tail"),
        pytest.param(
            ["publish", "--type", "host.down", "--team", "t", "--resource", "host:h1"],
            id="publish",
        ),
    ],
)
def test_commands_refuse_rabbitmq_with_the_fix(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args, env=RABBIT)
    assert result.exit_code == 2, result.output
    assert "broker.kind is 'rabbitmq'" in result.output
    assert "EVENTBUS_BROKER__KIND=redis" in result.output
    assert "Traceback" not in result.output
