"""Sealing the secrets of API-defined channels: AES-256-GCM, key from the settings.

A sealed value is text: ``v1.<key id>.<base64 of nonce + ciphertext>``. The
key id (8 hex digits of the key's SHA-256) says which key sealed it, so
decryption after a rotation picks the right one of ``security.secret_key``
and ``security.old_secret_keys`` at once; new values are always sealed with
the current key. The associated data binds a sealed value to its item
(``channel/<name>``): copying one item's ciphertext into another fails.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eventbus.errors import ConfigError, ConfigProblem
from eventbus.settings import SecuritySettings, secret_key_bytes

__all__ = ["NO_KEY", "SealError", "Sealer"]

_VERSION: Final = "v1"
_NONCE_BYTES: Final = 12

NO_KEY: Final = (
    "no security.secret_key is set, so secrets cannot be stored: set "
    "EVENTBUS_SECURITY__SECRET_KEY (or security.secret_key in the YAML) to 32 random "
    "bytes in base64, e.g. `openssl rand -base64 32`, on every worker and server"
)


class SealError(ConfigError):
    """A value that cannot be sealed or opened (no key, unknown key, tampered)."""

    def __init__(self, message: str) -> None:
        super().__init__([ConfigProblem("security.secret_key", message, "")])
        self.message = message

    def __str__(self) -> str:
        return self.message


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class Sealer:
    """Encrypts with the current key, decrypts with any configured one."""

    __slots__ = ("_current", "_keys")

    def __init__(self, security: SecuritySettings) -> None:
        current = security.secret_key
        self._current = secret_key_bytes(current) if current is not None else None
        keys = [secret_key_bytes(key) for key in security.old_secret_keys]
        if self._current is not None:
            keys.insert(0, self._current)
        self._keys = {_key_id(key): AESGCM(key) for key in keys}

    def __repr__(self) -> str:
        return f"<Sealer with {len(self._keys)} key(s)>"

    @property
    def can_seal(self) -> bool:
        return self._current is not None

    def seal(self, plaintext: bytes, context: str) -> str:
        if self._current is None:
            raise SealError(NO_KEY)
        key_id = _key_id(self._current)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[key_id].encrypt(nonce, plaintext, context.encode())
        return f"{_VERSION}.{key_id}.{base64.b64encode(nonce + sealed).decode()}"

    def open(self, token: str, context: str) -> bytes:
        version, _, rest = token.partition(".")
        key_id, _, data = rest.partition(".")
        if version != _VERSION or not data:
            raise SealError(f"{context}: the stored secrets are not in a known format")
        aead = self._keys.get(key_id)
        if aead is None:
            raise SealError(
                f"{context}: its secrets were sealed with a key that is not configured "
                f"(key id {key_id}): add that key to security.old_secret_keys"
            )
        raw = base64.b64decode(data)
        try:
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except InvalidTag:
            raise SealError(f"{context}: the stored secrets do not decrypt (tampered?)") from None
