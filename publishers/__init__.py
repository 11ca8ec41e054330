"""The publisher client services embed: ``Publisher`` (asyncio) and ``SyncPublisher``."""

from eventbus.envelope import Actor, Event, Outcome, Resource

from .client import EventLike, Publisher
from .sync import SyncPublisher

__all__ = ["Actor", "Event", "EventLike", "Outcome", "Publisher", "Resource", "SyncPublisher"]
