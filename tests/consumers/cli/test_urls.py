"""``eventbus urls verify``: explains URLs, masks secrets, exits 2 on invalid ones."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

import eventbus
from eventbus.cli import cli

TOKEN = "123456789:AAEsecretTelegramPart0123"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["urls", "verify", *args])
    return result.exit_code, result.stdout, result.stderr


def test_verify_shows_service_settings_and_requests() -> None:
    code, out, err = run(f"telegram://{TOKEN}@telegram?chats=-100123:42,@opsteam")
    assert code == 0, err
    assert "service:    telegram" in out
    assert "chats = -100123:42,@opsteam" in out
    assert "rate limit: 30/1s burst 30, 1/1s burst 3 per chat" in out
    assert "requests for a sample notification: 2" in out
    assert "POST https://api.telegram.org/bot***/sendMessage" in out
    assert '"message_thread_id": 42' in out
    assert "AAEsecretTelegramPart0123" not in out + err


def test_verify_smtp_describes_the_transaction() -> None:
    code, out, _ = run("smtp://me:pa%23ss@mail.example.com:587/?from=a@x.io&to=b@x.io,c@x.io")
    assert code == 0
    assert "SMTP smtp://mail.example.com:587" in out
    assert "STARTTLS if offered, AUTH as me; MAIL FROM a@x.io; RCPT TO b@x.io, c@x.io" in out
    assert "Subject: capsule.create failed: capsule c1 (team-1)" in out
    assert "pa#ss" not in out and "pa%23ss" not in out


def test_invalid_urls_exit_2_with_each_reason() -> None:
    code, out, err = run(
        "ntfy://ntfy.sh/alerts", "foo://x", "smtp://me:pa#ss@host/?from=a@x.io&to=b@x.io"
    )
    assert code == 2
    assert "✓ URL 1 (ntfy://...)" in out
    assert "URL 2 (foo://...): unknown URL scheme 'foo': use one of" in err
    assert "URL 3 (smtp://...)" in err and "percent-encode '#' as %23" in err
    assert "2 of 3 URL(s) invalid" in err
    assert "pa#ss" not in out + err


def test_no_body_option() -> None:
    code, out, _ = run("--no-body", "discord://tokenvalue123@42")
    assert code == 0 and "body (" not in out and "tokenvalue123" not in out


def test_cli_root_does_not_import_consumers() -> None:
    # The command moved into consumers; what stays true is that the root CLI,
    # listing every command with its help, never imports the daemon's side.
    code = (
        "import sys, eventbus.cli; from click.testing import CliRunner; "
        "assert 'urls' in CliRunner().invoke(eventbus.cli.cli, ['--help']).output; "
        "sys.exit(1 if any(m.split('.')[0] == 'consumers' and m != 'consumers.cli' "
        "and m != 'consumers' for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_generic_header_values_are_masked_but_the_allow_list() -> None:
    # Header names that do not say "token": a value is still a secret.
    url = (
        "generic://hooks.example.com/in?template=json&@X-Api=hdrSecretValue1"
        "&@X-Team=ops&@Accept=application/json&@User-Agent=probe/1"
        "&@Authorization=Bearer%20bearerSecret2"
    )
    code, out, err = run(url)
    assert code == 0, err
    for secret in ("hdrSecretValue1", "bearerSecret2", "ops"):
        assert f"= {secret}" not in out and f": {secret}" not in out
    assert "hdrSecretValue1" not in out and "bearerSecret2" not in out
    assert "@X-Api = ***" in out and "@X-Team = ***" in out
    assert "X-Api: ***" in out and "X-Team: ***" in out
    assert "Authorization: Bearer ***" in out
    assert "Accept: application/json" in out and "User-Agent: probe/1" in out
    assert "Content-Type: application/json" in out


def test_planned_headers_shown_are_only_the_allow_list_and_the_channels_own() -> None:
    code, out, err = run("ntfy://:tk_ntfyAccessToken9@ntfy.example.com/alerts?priority=high")
    assert code == 0, err
    assert "Priority: 4" in out and "Title: capsule.create failed" in out
    assert "Authorization: Bearer ***" in out and "tk_ntfyAccessToken9" not in out


def test_verify_shows_the_user_agent_sent() -> None:
    code, out, err = run("discord://tokenvalue123@42")
    assert code == 0, err
    assert f"User-Agent: eventbus/{eventbus.__version__}" in out
