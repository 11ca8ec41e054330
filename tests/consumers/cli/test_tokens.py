"""``eventbus tokens new``: what it prints is a working configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventbus.config import load_settings
from tests.eventbus.cli_support import run


@pytest.mark.parametrize("role", ["read", "operate"])
def test_printed_yaml_and_variable_configure_the_token(tmp_path: Path, role: str) -> None:
    result = run("tokens", "new", "--name", "dash", "--teams", "team-1,team-2", "--role", role)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    token = lines[1]
    assert len(token) >= 40 and token.isascii()
    variable, _, value = next(
        line for line in lines if line.startswith("EVENTBUS_TOKEN_")
    ).partition("=")
    assert value == token
    yaml_text = "\n".join(lines[lines.index("http:") :])
    path = tmp_path / "eventbus.yaml"
    path.write_text(yaml_text + "\n")
    settings = load_settings(path, environ={variable: value})
    [configured] = settings.http.tokens
    assert configured.name == "dash" and configured.teams == ["team-1", "team-2"]
    assert configured.token.get_secret_value() == token
    assert configured.role == role


def test_every_team_and_a_fresh_token_each_time() -> None:
    first = run("tokens", "new", "--name", "admin", "--teams", "*")
    second = run("tokens", "new", "--name", "admin")
    assert first.exit_code == second.exit_code == 0
    assert 'teams: ["*"]' in first.output and 'teams: ["*"]' in second.output
    assert first.output.splitlines()[1] != second.output.splitlines()[1]


def test_bad_name_is_a_usage_error() -> None:
    result = run("tokens", "new", "--name", "no spaces please")
    assert result.exit_code == 2
    assert "--name" in result.output and "letters, digits" in result.output
