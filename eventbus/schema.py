"""JSON Schemas generated from the models: the YAML configuration and the envelope.

``python -m eventbus.schema > config/eventbus.schema.json`` and
``python -m eventbus.schema envelope > config/envelope.schema.json``
(``make schema`` runs both); tests keep the committed files current.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .envelope import Event
from .filters import MATCHER_SCHEMA, WHERE_SCHEMA
from .settings import Settings

__all__ = ["config_schema", "envelope_schema"]

_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def config_schema() -> dict[str, Any]:
    schema = Settings.model_json_schema(mode="validation")
    # ``where`` is free-form data to pydantic (eventbus.filters compiles it): say what it holds.
    defs = schema["$defs"]
    defs["WhereMatcher"] = MATCHER_SCHEMA
    where = defs["SubscriptionSpec"]["properties"]["where"]
    next(s for s in where["anyOf"] if s.get("type") == "object").update(WHERE_SCHEMA)
    schema["$schema"] = _DRAFT
    schema["title"] = "eventbus configuration"
    schema["description"] = (
        "The eventbus YAML file. Values may reference environment variables as ${NAME}."
    )
    return schema


def envelope_schema() -> dict[str, Any]:
    """The event envelope as publishers in any language write it (the stream's ``payload``).

    Limits that are configurable (``envelope:`` settings) and rules between
    fields (``error`` only with outcome ``error``) are checked by eventbus,
    not expressed here.
    """
    schema = Event.model_json_schema(mode="validation")
    schema["$schema"] = _DRAFT
    schema["title"] = "eventbus event envelope"
    schema["description"] = (
        "One event, JSON in the stream field 'payload'. 'id' (a ULID) and 'timestamp' "
        "(RFC 3339 UTC) are derived from the stream entry when left out."
    )
    fields = schema["properties"]
    fields["event"]["description"] = "Dotted lowercase type, e.g. capsule.create."
    fields["event"]["pattern"] = r"^[a-z0-9_]+(\.[a-z0-9_]+)+$"
    fields["error"]["description"] = "Why it failed; only with outcome 'error'."
    fields["severity"]["description"] = (
        "debug < info < warning < error < critical. When absent the event counts as "
        "'error' if its outcome is 'error', else 'info'."
    )
    return schema


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    which = args[0] if args else "config"
    makers = {"config": config_schema, "envelope": envelope_schema}
    if which not in makers or len(args) > 1:
        sys.exit("usage: python -m eventbus.schema [config|envelope]")
    print(json.dumps(makers[which](), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
