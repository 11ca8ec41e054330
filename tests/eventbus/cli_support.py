"""Running the ``eventbus`` command line in-process, for the tests of every package's commands."""

from __future__ import annotations

from click.testing import CliRunner, Result

from eventbus.cli import cli

__all__ = ["CLOSED", "SECRETS", "no_secrets", "run"]

SECRETS = ["hunter2pw", "SECRETTOKEN", "whsec_c2VjcmV0c2VjcmV0c2VjcmV0", "tok3n-v4lue"]
CLOSED = "redis://:hunter2pw@127.0.0.1:1/0"


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
