"""JSON Schema of the YAML configuration, generated from the settings models.

``python -m eventbus.schema > config/eventbus.schema.json`` (``make schema``);
a test keeps the committed file current.
"""

from __future__ import annotations

import json
from typing import Any

from .settings import Settings

__all__ = ["config_schema"]


def config_schema() -> dict[str, Any]:
    schema = Settings.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "eventbus configuration"
    schema["description"] = (
        "The eventbus YAML file. Values may reference environment variables as ${NAME}."
    )
    return schema


def main() -> None:
    print(json.dumps(config_schema(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
