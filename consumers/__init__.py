"""The consumer daemon: worker loop, dispatch, records, retries, channels, HTTP side."""

from .daemon import Daemon
from .dispatch import Dispatcher, Plan
from .health import Health
from .metrics import Metrics
from .records import Attempt, DeliveryRecord, DeliveryStatus, DeliveryStore, delivery_id
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
    "Plan",
    "Worker",
    "delivery_id",
]
