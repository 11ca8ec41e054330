"""The consumer daemon: worker loop, dispatch, records, retries, channels, HTTP side."""

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
