"""The operator console's store: channels and subscriptions per team, over HTTP and CLI.

``ConsoleStore`` keeps them in Redis (secrets sealed by ``Sealer``), ``Console``
checks and changes them (the API and the CLI both call it), ``ConsoleFeed``
brings every change to each worker within a second.
"""

from __future__ import annotations

from .crypto import NO_KEY, Sealer, SealError
from .propagation import ConsoleFeed, merge
from .service import Console, ConsoleError, Teams
from .store import ConsoleStore, Item, Snapshot

__all__ = [
    "NO_KEY",
    "Console",
    "ConsoleError",
    "ConsoleFeed",
    "ConsoleStore",
    "Item",
    "SealError",
    "Sealer",
    "Snapshot",
    "Teams",
    "merge",
]
