"""``eventbus tokens new``: a random API token and the YAML that installs it."""

from __future__ import annotations

import re
import secrets

import click

from eventbus.settings import NAME_RE

__all__ = ["command"]

_TOKEN_BYTES = 32  # 256 bits, 43 URL-safe characters


@click.group(
    "tokens",
    epilog="""\b
Examples:
  eventbus tokens new --name dashboard --teams team-1,team-2
  eventbus tokens new --name ops-admin --teams '*' --role operate""",
)
def command() -> None:
    """Make API tokens for the dashboard, SSE clients and the HTTP API."""


@command.command(
    "new",
    epilog="""\b
Examples:
  eventbus tokens new --name dashboard --teams team-1,team-2

The token is printed once; eventbus keeps only what you paste into the
configuration. Put the value in the environment and refer to it as ${NAME}
to keep it out of the YAML file.""",
)
@click.option("--name", required=True, help="Shown in logs instead of the token, e.g. dashboard.")
@click.option(
    "--teams",
    default="*",
    show_default=True,
    help="Comma-separated teams the token may read ('*' for every team).",
)
@click.option(
    "--role",
    type=click.Choice(["read", "operate"]),
    default="read",
    show_default=True,
    help="read: look only; operate: also acknowledge, resolve, silence, resend, change.",
)
def new(name: str, teams: str, role: str) -> None:
    """Print a new random token and the http.tokens entry to paste."""
    if not re.match(NAME_RE, name):
        raise click.BadParameter(
            "use letters, digits, '.', '_' or '-' (at most 64), e.g. dashboard", param_hint="--name"
        )
    team_list = [team.strip() for team in teams.split(",") if team.strip()]
    if not team_list:
        raise click.BadParameter("name at least one team, or '*'", param_hint="--teams")
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    variable = "EVENTBUS_TOKEN_" + re.sub(r"[^A-Z0-9]", "_", name.upper())
    shown_teams = ", ".join(f'"{team}"' if team == "*" else team for team in team_list)
    click.echo(f"# token {name!r}, shown once:\n{token}\n")
    click.echo(
        f"# 1. keep it in the worker's environment (e.g. the systemd env file):\n"
        f"{variable}={token}\n"
    )
    click.echo("# 2. add this under http.tokens in the YAML file, then reload (SIGHUP):")
    click.echo(
        "http:\n"
        "  tokens:\n"
        f"    - name: {name}\n"
        f"      token: ${{{variable}}}\n"
        f"      teams: [{shown_teams}]" + (f"\n      role: {role}" if role != "read" else "")
    )
