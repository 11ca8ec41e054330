"""Sending due digests: claim due groups, hand their digests to the pipeline.

Any worker flushes any group: ``GroupQueue.claim`` leases a due digest to
one worker at a time (as due retries are leased), and the digest's commit
ends the flush (``Settlement.flushed``), in the same script as its record
and retry. A worker killed in between leaves the digest leased; once the
lease runs out another worker claims the same digest (same id and events).
"""

from __future__ import annotations

from collections.abc import Callable

from .digests import digest_job
from .pipeline import Pipeline
from .store import GroupFlush, GroupQueue, RetryJob, Settlement

__all__ = ["Flusher"]


class Flusher:
    def __init__(self, groups: GroupQueue, pipeline: Pipeline, clock: Callable[[], float]) -> None:
        self.groups = groups
        self.pipeline = pipeline
        self.clock = clock

    async def flush_due(self, lease: float, count: int) -> int:
        """Claim up to ``count`` due digests and start sending them; how many were due."""
        if count < 1:
            return 0
        due = await self.groups.claim(self.clock(), lease, count)
        sending: list[tuple[RetryJob, GroupFlush]] = []
        emptied: list[Settlement] = []
        for group in due:
            job = digest_job(group)
            if job is None:  # its events expired: nothing to send, end the flush
                emptied.append(Settlement(flushed=[group.flush]))
            else:
                sending.append((job, group.flush))
        if emptied:
            await self.pipeline.commit(emptied)
        await self.pipeline.take_digests(sending)
        return len(due)
