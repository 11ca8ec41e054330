"""Every secret a configuration holds, for masking whatever leaves the process.

Channels know their own secrets exactly (a token in a URL path, a Teams
``sig``), but logging starts before they are built and commands such as
``serve`` build none. This finds what the settings alone reveal: every
``SecretStr`` (broker URL, API tokens, channel URLs), the credentials and
secret-looking query values inside those URLs, and channel options whose
names say they are secret, plus every custom header value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, SecretStr

from .redaction import Redactor
from .settings import Settings

__all__ = ["configured_secrets"]

_SECRET_WORDS = ("secret", "token", "password", "pass", "key", "auth", "sig", "webhook")
# A user name is a secret when it is the credential itself (discord://TOKEN@ID):
# no password beside it, or long enough not to be an ordinary login name.
_TOKEN_LIKE_USER = 12


def configured_secrets(settings: Settings) -> Redactor:
    """A ``Redactor`` of every secret ``settings`` hold."""
    return Redactor(_secrets_of(settings))


def _secrets_of(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield from _with_url_parts(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secrets_of(getattr(value, name))
        for name, extra in (value.__pydantic_extra__ or {}).items():
            yield from _option_secrets(name, extra)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secrets_of(item)


def _option_secrets(name: str, value: Any) -> Iterator[str]:
    """A channel option (kept as an extra key): secret by its name; headers always."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if name.lower() == "headers" and isinstance(value, dict):
        for header in value.values():
            yield from _option_secrets("secret", header)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _option_secrets(name, item)
    elif isinstance(value, str) and any(word in name.lower() for word in _SECRET_WORDS):
        yield from _with_url_parts(value)


def _with_url_parts(text: str) -> Iterator[str]:
    """A secret value, or for a URL the parts of it that are secret.

    A URL without credentials or query (``redis://127.0.0.1:6379/0``) is not
    itself a secret; masking it whole would hide where a worker connects.
    Tokens in a channel URL's path are masked by the channel's own redactor.
    """
    if "://" not in text:
        yield text
        return
    try:
        parts = urlsplit(text)
    except ValueError:
        yield text
        return
    if parts.username or parts.password or parts.query:
        yield text
    user, password = parts.username, parts.password
    if password:
        yield unquote(password)
    if user and (not password or len(user) >= _TOKEN_LIKE_USER):
        yield unquote(user)
    for key, item in parse_qsl(parts.query, keep_blank_values=False):
        if any(word in key.lower() for word in _SECRET_WORDS):
            yield item
