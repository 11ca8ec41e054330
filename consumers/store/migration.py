"""Moving a deployment from the untagged key layout to the hash-tagged one.

Before the hash tag, keys were ``eventbus:events``, ``eventbus:delivery:<id>``
and so on; now they are ``{eventbus}:events``, ``{eventbus}:delivery:<id>``
(see ``eventbus.keys``). ``migrate_layout`` moves every old key to its new
name and is safe to run any number of times, by any number of workers:

- one worker at a time (``SET NX`` lock with an expiry); the others wait for
  it and find nothing left to do;
- a key whose new name is free is RENAMEd, which keeps a stream's consumer
  groups and pending entries and a record's expiry;
- a key whose new name exists already (written by an upgraded process before
  the migration ran) is merged into it: sets and sorted sets are united,
  hashes keep the new fields, a record keeps the newer copy, and the old
  stream takes the new stream's few entries before it is renamed over it;
- per-delivery keys are found with SCAN, a page at a time;
- ``{prefix}:layout`` records that the move was done, so a worker start
  costs one round trip afterwards.

During a rolling upgrade an old publisher still XADDs to the old stream.
``fold_legacy_stream`` (run by the worker's maintenance loop) moves the
entries no worker of our group has read yet into the new stream, and drops
the old stream once nothing in it is pending. Entries an old worker has read
stay for that worker to acknowledge, unless it leaves them idle as long as
reclaiming would wait (``consumer.claim_idle``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as aioredis
import structlog
from redis.commands.core import AsyncScript

from eventbus.brokers.cluster import is_cluster, scan_keys
from eventbus.brokers.redis_streams import translated
from eventbus.errors import BrokerError
from eventbus.keys import Keys, LegacyKeys

__all__ = ["LAYOUT_VERSION", "MigrationReport", "fold_legacy_stream", "migrate_layout"]

log = structlog.get_logger("eventbus.store")

LAYOUT_VERSION: Final = "2"

_LOCK_TTL_S = 300
_SCAN_PAGE = 1000

# KEYS[1] old name, KEYS[2] new name; ARGV[1] ZUNIONSTORE aggregate (MIN/MAX).
# Returns 0 nothing to move, 1 renamed, 2 merged, -1 both streams have groups.
_MOVE: Final = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('RENAME', KEYS[1], KEYS[2])
  return 1
end
if kind == 'stream' then
  if #redis.call('XINFO', 'GROUPS', KEYS[2]) > 0 then return -1 end
  for _, row in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
    redis.call('XADD', KEYS[1], '*', unpack(row[2]))
  end
  redis.call('RENAME', KEYS[1], KEYS[2])
  return 2
end
local old_ttl, new_ttl = redis.call('PTTL', KEYS[1]), redis.call('PTTL', KEYS[2])
if kind == 'zset' then
  redis.call('ZUNIONSTORE', KEYS[2], 2, KEYS[2], KEYS[1], 'AGGREGATE', ARGV[1])
elseif kind == 'set' then
  redis.call('SUNIONSTORE', KEYS[2], KEYS[2], KEYS[1])
elseif kind == 'hash' then
  local fields = redis.call('HGETALL', KEYS[1])
  for i = 1, #fields, 2 do redis.call('HSETNX', KEYS[2], fields[i], fields[i + 1]) end
end
if old_ttl > 0 and new_ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], math.max(old_ttl, new_ttl))
end
redis.call('DEL', KEYS[1])
return 2
"""

# KEYS[1] old stream, KEYS[2] new stream; ARGV: group, count, min idle ms.
# Moves entries the group has not read, and entries read by a consumer that
# left them idle past min idle (an old worker that died, as in reclaim).
# Returns {entries moved, 1 if the old stream was dropped}.
_FOLD: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local count = tonumber(ARGV[2])
local start, ours = '-', false
for _, info in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local fields = {}
  for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
  if fields['name'] == ARGV[1] then
    start, ours = '(' .. fields['last-delivered-id'], true
  end
end
local moved = 0
if ours then
  local idle = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', count)
  for _, row in ipairs(idle) do
    local entry = redis.call('XRANGE', KEYS[1], row[1], row[1])
    if #entry > 0 then redis.call('XADD', KEYS[2], '*', unpack(entry[1][2])) end
    redis.call('XACK', KEYS[1], ARGV[1], row[1])
    redis.call('XDEL', KEYS[1], row[1])
    moved = moved + 1
  end
end
local rows = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', count)
for _, row in ipairs(rows) do
  redis.call('XADD', KEYS[2], '*', unpack(row[2]))
  redis.call('XDEL', KEYS[1], row[1])
end
moved = moved + #rows
if moved < count then
  local pending = 0
  if ours then pending = redis.call('XPENDING', KEYS[1], ARGV[1])[1] end
  if pending == 0 then
    redis.call('DEL', KEYS[1])
    return {moved, 1}
  end
end
return {moved, 0}
"""

# KEYS[1] lock; ARGV[1] our token. Deletes the lock only while we hold it.
_UNLOCK: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(slots=True)
class MigrationReport:
    """What one ``migrate_layout`` call did."""

    renamed: int = 0  # old keys renamed to their new name
    merged: int = 0  # old keys merged into a new key that existed already
    folded: int = 0  # old stream entries moved into the new stream
    waited: bool = False  # another worker held the lock; we waited for it
    already_done: bool = False  # nothing of the old layout was left
    keys: list[str] = field(default_factory=list)  # the fixed keys moved

    @property
    def moved(self) -> int:
        return self.renamed + self.merged


async def migrate_layout(
    redis: aioredis.Redis,
    prefix: str,
    *,
    group: str = "delivery",
    wait: float = 120.0,
    force: bool = False,
) -> MigrationReport:
    """Move the untagged layout under ``prefix`` to the tagged one; idempotent.

    Called by every worker at start and meant for an operator command too
    (``force`` scans for per-delivery keys even when the layout is marked
    done, e.g. after the last old worker stopped). ``group`` is the consumer
    group whose unread entries a leftover old stream hands over. Waits up
    to ``wait`` seconds for another worker's migration.
    """
    keys, legacy = Keys(prefix), LegacyKeys(prefix)
    fixed = _fixed_pairs(keys, legacy)
    report = MigrationReport()
    if is_cluster(redis):
        await _check_cluster_layout(redis, keys, legacy, fixed, force, report)
        return report
    async with translated("migrate key layout"):
        pipe = redis.pipeline(transaction=False)
        pipe.get(keys.layout)
        for old, _new, _aggregate in fixed:
            pipe.exists(old)
        done, *present = await pipe.execute()
        if done is not None and not force and not any(present[1:]):
            report.already_done = True
            if present[0]:  # only an old publisher's stream: hand its entries over
                report.folded = await fold_legacy_stream(redis, prefix, group)
            return report
        token = uuid.uuid4().hex
        if not await redis.set(keys.migration_lock, token, nx=True, ex=_LOCK_TTL_S):
            report.waited = True
            await _wait_for_unlock(redis, keys, wait)
            return report
        try:
            present_fixed = [pair for pair, there in zip(fixed, present, strict=True) if there]
            await _move_all(redis, keys, legacy, present_fixed, group, report)
            await redis.set(keys.layout, LAYOUT_VERSION)
        finally:
            await redis.register_script(_UNLOCK)(keys=[keys.migration_lock], args=[token])
    if report.moved or report.folded:
        log.warning(
            "store.layout_migrated",
            renamed=report.renamed,
            merged=report.merged,
            folded=report.folded,
            keys=report.keys,
        )
    return report


async def fold_legacy_stream(
    redis: aioredis.Redis,
    prefix: str,
    group: str,
    *,
    claim_idle: float = 3600.0,
    batch: int = 1000,
) -> int:
    """Move entries of the old stream that ``group`` has not read into the new one.

    For a rolling upgrade: an old publisher keeps writing ``<prefix>:events``.
    Entries an old worker received and left idle for ``claim_idle`` seconds
    (it died, or was stopped for good) move too, as reclaiming would. Returns
    how many entries moved (appended to the new stream, with new ids).
    """
    keys, legacy = Keys(prefix), LegacyKeys(prefix)
    moved = 0
    async with translated("fold old stream"):
        if not await redis.exists(legacy.events):
            return 0  # the usual case: one cheap command
        if is_cluster(redis):  # the two streams are in different slots: no script spans them
            raise BrokerError(
                f"an old publisher writes the untagged stream {legacy.events!r} on this "
                f"Redis Cluster; its entries cannot be folded into {keys.events!r} here. "
                "Upgrade that publisher (it then writes the tagged stream)"
            )
        fold = redis.register_script(_FOLD)
        while True:
            reply: Any = await fold(
                keys=[legacy.events, keys.events],
                args=[group, batch, int(claim_idle * 1000)],
            )
            moved += int(reply[0])
            if int(reply[0]) < batch:
                break
    if moved:
        log.warning("store.old_stream_folded", entries=moved, stream=legacy.events)
    return moved


async def _check_cluster_layout(
    redis: aioredis.Redis,
    keys: Keys,
    legacy: LegacyKeys,
    fixed: list[tuple[str, str, str]],
    force: bool,
    report: MigrationReport,
) -> None:
    """On a Redis Cluster there is nothing to move, only to check.

    The untagged layout never worked on a cluster (its scripts span slots),
    and an old key and its new name sit in different slots, so no script
    can move one atomically: such keys are an error saying what to do.
    """
    async with translated("check the key layout"):
        done = await redis.get(keys.layout)
        if done is not None and not force:
            report.already_done = True
            return
        found = [old for old, _new, _how in fixed if await redis.exists(old)]
        for pattern in (
            legacy.delivery_pattern,
            legacy.retry_job_pattern,
            legacy.event_deliveries_pattern,
        ):
            async for raw in scan_keys(redis, pattern, _SCAN_PAGE):
                found.append(raw.decode() if isinstance(raw, bytes) else raw)
                break  # one is enough to refuse
        if found:
            raise BrokerError(
                f"this Redis Cluster holds keys of the old untagged layout under prefix "
                f"{keys.prefix!r} (e.g. {', '.join(found[:3])}): they cannot be moved "
                f"in place on a cluster. Run `eventbus migrate` against the single Redis "
                f"node they came from, then copy the {{{keys.prefix}}}:* keys over"
            )
        await redis.set(keys.layout, LAYOUT_VERSION)
        report.already_done = done is not None


def _fixed_pairs(keys: Keys, legacy: LegacyKeys) -> list[tuple[str, str, str]]:
    # (old, new, how sorted sets merge): the events stream must come first.
    return [
        (legacy.events, keys.events, "MAX"),
        (legacy.dlq, keys.dlq, "MAX"),
        (legacy.deliveries_index, keys.deliveries_index, "MAX"),
        (legacy.retries, keys.retries, "MIN"),  # the earlier due time wins
        (legacy.channel_state, keys.channel_state, "MAX"),
    ]


async def _move_all(
    redis: aioredis.Redis,
    keys: Keys,
    legacy: LegacyKeys,
    fixed: list[tuple[str, str, str]],
    group: str,
    report: MigrationReport,
) -> None:
    move = redis.register_script(_MOVE)
    for old, new, aggregate in fixed:
        outcome = int(await move(keys=[old, new], args=[aggregate]))
        _count(report, outcome)
        if outcome > 0:
            report.keys.append(old)
        elif outcome < 0:  # both streams have groups: hand over what is unread
            report.folded += await fold_legacy_stream(redis, keys.prefix, group)
    for pattern in (
        legacy.delivery_pattern,
        legacy.retry_job_pattern,
        legacy.event_deliveries_pattern,
    ):
        await _move_matching(redis, move, keys, legacy, pattern, report)


async def _move_matching(
    redis: aioredis.Redis,
    move: AsyncScript,
    keys: Keys,
    legacy: LegacyKeys,
    pattern: str,
    report: MigrationReport,
) -> None:
    cursor: Any = 0
    while True:  # a single node here: a cluster is only checked (_check_cluster_layout)
        cursor, found = await redis.scan(cursor, match=pattern, count=_SCAN_PAGE)
        if found:
            pipe = redis.pipeline(transaction=False)
            for raw in found:
                old = raw.decode() if isinstance(raw, bytes) else raw
                await move(keys=[old, legacy.renamed(old, keys)], args=["MAX"], client=pipe)
            for outcome in await pipe.execute():
                _count(report, int(outcome))
        if int(cursor) == 0:
            return


def _count(report: MigrationReport, outcome: int) -> None:
    if outcome == 1:
        report.renamed += 1
    elif outcome == 2:
        report.merged += 1


async def _wait_for_unlock(redis: aioredis.Redis, keys: Keys, wait: float) -> None:
    # Another worker is migrating; starting before it finishes would read
    # a stream that is about to be replaced. Polling is fine here: this
    # happens once per deployment, at start.
    deadline = time.monotonic() + wait
    while await redis.exists(keys.migration_lock):
        if time.monotonic() > deadline:
            log.warning("store.migration_wait_timeout", lock=keys.migration_lock, waited_s=wait)
            return
        await asyncio.sleep(0.2)
