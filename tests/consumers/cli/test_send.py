"""``eventbus send``: one notification to URLs, against local receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import pytest
from click.testing import CliRunner, Result

from eventbus.cli import cli
from tests.consumers.sink import Sink

SECRET = "whsec_" + base64.b64encode(b"eventbus send test key, 32 bytes").decode()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    receiver = Sink()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def send(*args: str, stdin: str | None = None) -> Result:
    # The command runs its own event loop: off this one, which serves the receiver.
    return await asyncio.to_thread(CliRunner().invoke, cli, ["send", *args], input=stdin)


async def test_webhook_url_delivers_a_signed_envelope(sink: Sink) -> None:
    result = await send(
        sink.url, "--allow-private", "--secret", SECRET, "-t", "Disk full", "-m", "db1 at 97%"
    )
    assert result.exit_code == 0, result.output
    assert (
        "✓ URL 1 (webhook http://127.0.0.1:" in result.stdout
        and "delivered (HTTP 204" in result.stdout
    )
    [got] = sink.received
    body = json.loads(got.body)
    assert body["event"] == "eventbus.send" and "outcome" not in body
    assert body["severity"] == "info"
    assert body["metadata"] == {"title": "Disk full", "message": "db1 at 97%"}
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert got.headers["webhook-signature"] == f"v1,{expected}"


async def test_generic_url_with_message_from_stdin_and_severity(sink: Sink) -> None:
    url = f"generic+http://127.0.0.1:{sink.port}/notify?template=json&@X-Team=ops"
    result = await send(
        url,
        "--allow-private",
        "--title",
        "Deploy",
        "--message",
        "-",
        "--severity",
        "critical",
        stdin="v1.4 failed\n",
    )
    assert result.exit_code == 0, result.output
    [got] = sink.received
    headers = {name.lower(): value for name, value in got.headers.items()}
    assert got.path == "/notify" and headers["x-team"] == "ops"
    assert headers["content-type"].startswith("application/json")
    assert json.loads(got.body) == {"title": "[CRITICAL] Deploy", "message": "v1.4 failed"}


async def test_severity_is_the_envelope_field(sink: Sink) -> None:
    result = await send(sink.url, "--allow-private", "-m", "db1 down", "--severity", "WARNING")
    assert result.exit_code == 0, result.output
    [got] = sink.received
    body = json.loads(got.body)
    assert body["severity"] == "warning" and "severity" not in body["metadata"]
    assert "outcome" not in body


async def test_one_failing_url_exits_1_with_its_reason(sink: Sink) -> None:
    refusing = Sink(default=404)
    await refusing.start()
    try:
        result = await send(
            sink.url,
            f"generic+http://127.0.0.1:{refusing.port}/gone",
            "--allow-private",
            "-m",
            "hi",
        )
    finally:
        await refusing.stop()
    assert result.exit_code == 1
    assert "✓ URL 1 (webhook http://127.0.0.1:" in result.stdout
    assert "✗ URL 2 (generic POST http://127.0.0.1:" in result.stderr
    assert "permanent, HTTP 404" in result.stderr
    assert "1 of 2 URL(s) failed" in result.stderr
    assert len(sink.received) == 1 and len(refusing.received) == 1


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://127.0.0.1:{port}/hook", id="webhook-checked-when-built"),
        pytest.param("generic+http://127.0.0.1:{port}/hook", id="generic-checked-when-sent"),
    ],
)
async def test_private_target_refused_without_allow_private(sink: Sink, url: str) -> None:
    result = await send(url.format(port=sink.port), "-m", "hi")
    assert result.exit_code == 1
    assert "refusing to connect to 127.0.0.1 (loopback)" in result.stderr
    assert "security.allow_private_targets" in result.stderr and "--allow-private" in result.stderr
    assert sink.received == []


async def test_unusable_url_exits_2_and_sends_nothing(sink: Sink) -> None:
    result = await send(
        sink.url, "discord://only-a-token@not-a-number", "--allow-private", "-m", "x"
    )
    assert result.exit_code == 2
    assert (
        "URL 2 (discord://...): discord webhook id 'not-a-number' is not numeric" in result.stderr
    )
    assert "nothing was sent" in result.stderr
    assert sink.received == []


async def test_usage_errors_exit_2() -> None:
    assert (await send("ntfy://ntfy.sh/x")).exit_code == 2  # no --message
    assert (await send("ntfy://ntfy.sh/x", "-m", "-", stdin="")).exit_code == 2
    assert (await send("ntfy://ntfy.sh/x", "-m", "x", "--severity", "loud")).exit_code == 2


async def test_no_secret_in_the_output(sink: Sink) -> None:
    token = "tk_s3cretNtfyToken99"
    failing = Sink(default=401)
    await failing.start()
    try:
        result = await send(
            f"ntfy://:{token}@127.0.0.1:{sink.port}/alerts?scheme=http",
            f"ntfy://bob:{token}@127.0.0.1:{failing.port}/alerts?scheme=http",
            "--allow-private",
            "-m",
            f"the text is not secret, {token[:4]}",
        )
    finally:
        await failing.stop()
    assert result.exit_code == 1
    assert sink.received[0].headers["Authorization"] == f"Bearer {token}"
    assert "✓ URL 1 (ntfy" in result.stdout and "✗ URL 2 (ntfy" in result.stderr
    encoded = base64.b64encode(f"bob:{token}".encode()).decode()
    assert token not in result.output and encoded not in result.output


async def test_keys_the_url_sets_but_eventbus_ignores_are_warned_about(sink: Sink) -> None:
    # ntfy's disabletlsverification is accepted and not acted on (_compat.UNHONOURED),
    # as `urls verify` and `config check` say; the send still goes out.
    url = f"ntfy://127.0.0.1:{sink.port}/alerts?scheme=http&disabletlsverification=yes"
    result = await send(url, "--allow-private", "-t", "Disk full", "-m", "db1 at 97%")
    assert result.exit_code == 0, result.output
    assert "! URL 1: " in result.stderr and "disabletlsverification" in result.stderr
    assert len(sink.received) == 1
