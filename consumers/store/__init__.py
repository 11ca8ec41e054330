"""Every Redis key the daemon writes: records, retries, dead letters, the commit.

Key names come from ``eventbus.keys.Keys`` (the publisher needs the stream's
name too). Nothing here imports the pipeline: dispatch hands the store a
``Settlement``, and ``Committer`` writes it together with the XACK.
"""

from .alerts import Alert, AlertStatus, AlertStore, Transition
from .breaker import MINUTE_SLOTS, BreakerStore, Circuit, CircuitState, Minute, Outcomes
from .commit import Committer
from .deadletters import DeadLetter, DeadLetters
from .groups import DueGroup, GroupQueue
from .maintenance import GroupStats, Maintenance, safe_min_id
from .migration import MigrationReport, fold_legacy_stream, migrate_layout
from .records import (
    DUPLICATE,
    Attempt,
    ChannelState,
    DeliveryRecord,
    DeliveryStatus,
    DeliveryStore,
    delivery_id,
    note_duplicate,
)
from .retries import RetryJob, RetryPolicy, RetryQueue
from .settlement import PENDING_DIGEST, DeadLetterOrder, Grouped, GroupFlush, Settlement
from .silences import Silence, SilenceError, SilenceStore

__all__ = [
    "DUPLICATE",
    "MINUTE_SLOTS",
    "PENDING_DIGEST",
    "Alert",
    "AlertStatus",
    "AlertStore",
    "Attempt",
    "BreakerStore",
    "ChannelState",
    "Circuit",
    "CircuitState",
    "Committer",
    "DeadLetter",
    "DeadLetterOrder",
    "DeadLetters",
    "DeliveryRecord",
    "DeliveryStatus",
    "DeliveryStore",
    "DueGroup",
    "GroupFlush",
    "GroupQueue",
    "GroupStats",
    "Grouped",
    "Maintenance",
    "MigrationReport",
    "Minute",
    "Outcomes",
    "RetryJob",
    "RetryPolicy",
    "RetryQueue",
    "Settlement",
    "Silence",
    "SilenceError",
    "SilenceStore",
    "Transition",
    "delivery_id",
    "fold_legacy_stream",
    "migrate_layout",
    "note_duplicate",
    "safe_min_id",
]
