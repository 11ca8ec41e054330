"""The consumer daemon: worker loop, dispatch, records, retries, channels, HTTP side."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .daemon import Daemon
    from .dispatch import Dispatcher
    from .health import Health
    from .metrics import Metrics
    from .store import (
        Attempt,
        DeliveryRecord,
        DeliveryStatus,
        DeliveryStore,
        Settlement,
        delivery_id,
    )
    from .worker import Worker

__all__ = [
    "Attempt",
    "Daemon",
    "DeliveryRecord",
    "DeliveryStatus",
    "DeliveryStore",
    "Dispatcher",
    "Health",
    "Metrics",
    "Settlement",
    "Worker",
    "delivery_id",
]

# Importing any submodule runs this file first, and ``eventbus --help`` imports
# ``consumers.cli``: the daemon's modules (and the worker extra's packages) load
# only when one of these names is used.
_HOMES: Final = {
    "Attempt": "store",
    "Daemon": "daemon",
    "DeliveryRecord": "store",
    "DeliveryStatus": "store",
    "DeliveryStore": "store",
    "Dispatcher": "dispatch",
    "Health": "health",
    "Metrics": "metrics",
    "Settlement": "store",
    "Worker": "worker",
    "delivery_id": "store",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value
