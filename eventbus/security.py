"""The ``security`` settings: which targets may be reached, and the console's secret key.

``secret_key`` seals the secrets of channels made over the console API
(``consumers.console.crypto``, AES-256-GCM); ``old_secret_keys`` still open
what earlier keys sealed, so a key can be rotated without losing anything.
"""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["SecuritySettings", "secret_key_bytes"]


class SecuritySettings(BaseModel):
    """``security``: the private-target guard and the console's secret key."""

    model_config = ConfigDict(extra="forbid")

    allow_private_targets: bool = False
    allowed_hosts: list[str] = Field(default_factory=list)
    secret_key: SecretStr | None = Field(
        None,
        description=(
            "AES-256-GCM key sealing the secrets of channels made over the console API: "
            "32 random bytes, base64 (e.g. `openssl rand -base64 32`)"
        ),
    )
    old_secret_keys: list[SecretStr] = Field(
        default_factory=list,
        description="earlier secret_key values, still accepted for decryption (rotation)",
    )

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            secret_key_bytes(key)
        return key

    @field_validator("old_secret_keys")
    @classmethod
    def _check_old_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for key in keys:
            secret_key_bytes(key)
        return keys


def secret_key_bytes(key: SecretStr) -> bytes:
    """The 32 bytes of a base64 ``security.secret_key``; ``ValueError`` (never showing it)."""
    text = key.get_secret_value().strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=False)
    except ValueError:
        raw = b""
    if len(raw) != 32 or len(text) < 43:
        raise ValueError(
            "must be 32 random bytes in base64 (44 characters), e.g. from `openssl rand -base64 32`"
        )
    return raw
