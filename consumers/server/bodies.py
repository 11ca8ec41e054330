"""Request bodies of the write endpoints: one bounded JSON object, or a clear 4xx."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

__all__ = ["json_object"]


async def json_object(
    request: Request, *, limit: int, example: str, empty: bool = False
) -> dict[str, Any]:
    """The body as a JSON object of at most ``limit`` bytes (413, 400 otherwise).

    ``example`` completes the 400 message (``{"name": ...}``); ``empty=True``
    reads a missing body as ``{}``.
    """
    raw = await request.body()
    if empty and not raw.strip():
        return {}
    if len(raw) > limit:
        raise HTTPException(413, f"the body is larger than {limit} bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise HTTPException(400, f"the body must be a JSON object, e.g. {example}")
    return body
