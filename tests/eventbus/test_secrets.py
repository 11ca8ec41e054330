"""configured_secrets: what the settings alone say is secret (before channels exist)."""

from __future__ import annotations

from eventbus.secrets import configured_secrets
from eventbus.settings import Settings


def test_every_kind_of_configured_secret_is_masked() -> None:
    settings = Settings(
        broker={"redis_url": "redis://worker:redisPASS123@redis.internal:6379/0"},
        http={"tokens": [{"name": "dash", "token": "apiTOKEN9999"}]},
        channels=[
            {"name": "d", "url": "discord://discordTOKEN123456@987"},
            {"name": "n", "url": "ntfy://ntfy.example.com/topic?token=ntfyTOKEN42"},
            {
                "name": "h",
                "type": "webhook",
                "url": "https://hooks.example.com/x",
                "secret": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "headers": {"X-Anything": "headerVALUE77"},
            },
            {"name": "t", "type": "telegram", "token": "123:botTOKENabc", "chats": ["1"]},
        ],
    )
    text = (
        "redis://worker:redisPASS123@redis.internal url=discord://discordTOKEN123456@987 "
        "sent token=ntfyTOKEN42 with apiTOKEN9999 headerVALUE77 "
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw and bot123:botTOKENabc"
    )
    masked = configured_secrets(settings).mask(text)
    for secret in ("redisPASS123", "discordTOKEN123456", "ntfyTOKEN42", "apiTOKEN9999"):
        assert secret not in masked
    for secret in ("headerVALUE77", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "botTOKENabc"):
        assert secret not in masked
    # ordinary words stay readable: a short login name is not masked everywhere
    assert "worker" in masked and "redis.internal" in masked


def test_a_url_without_credentials_is_not_masked_whole() -> None:
    settings = Settings(broker={"redis_url": "redis://127.0.0.1:6379/0"})
    text = "consuming from redis://127.0.0.1:6379/0"
    assert configured_secrets(settings).mask(text) == text
