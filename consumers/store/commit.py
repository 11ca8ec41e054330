"""The one atomic write that settles finished work: records, retries, dead letters, XACK.

Many settlements are committed by a single Lua script call. A script runs
atomically like MULTI/EXEC, but it is one command instead of eight per
entry, which is where the worker spent most of its time (building and
parsing queued commands). Key names still come from ``Keys``: the caller
passes every key the script touches, all under one hash tag.

The batch goes as plain arguments, packed in C by hiredis (``packing``).
One JSON argument decoded with ``cjson`` was measured too and was slower
(drain 0.070 vs 0.076 of the bare loop, run 0.071 vs 0.074, same run):
the records are JSON already, and escaping them into a JSON string and
back costs more than packing a few hundred arguments in C.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson
import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import translated
from eventbus.keys import Keys

from .records import DeliveryRecord
from .settlement import PENDING_DIGEST, DeadLetterOrder, Settlement

__all__ = ["Committer"]

# KEYS: 1 stream, 2 deliveries index, 3 retries zset, 4 channel states, 5 dead letters,
#       6 due groups zset, 7 digest sequence
# ARGV: group, ttl, now, group key base, digest key base, delivery key base, event
# deliveries key head and tail, then sections, each a count followed by its items.
# A record's keys are built here from its ids (as the group and digest keys
# are): passing both names per record was two fifths of the call's bytes.
_COMMIT: Final = """
local group, ttl, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local gbase, dbase = ARGV[4], ARGV[5]
local rbase, ehead, etail = ARGV[6], ARGV[7], ARGV[8]
local i = 9
local function nxt() local v = ARGV[i]; i = i + 1; return v end
local function keys_of(id, eid) return rbase .. id, ehead .. eid .. etail end
local function zadd_all(key, pairs)
  -- one ZADD per chunk instead of one per member; unpack() has a stack limit
  for first = 1, #pairs, 4000 do
    redis.call('ZADD', key, unpack(pairs, first, math.min(first + 3999, #pairs)))
  end
end
local index = {}
for _ = 1, tonumber(nxt()) do
  local id, eid, record, updated = nxt(), nxt(), nxt(), nxt()
  local rkey, ekey = keys_of(id, eid)
  redis.call('SET', rkey, record, 'EX', ttl)
  redis.call('SADD', ekey, id)
  redis.call('EXPIRE', ekey, ttl)
  index[#index + 1] = updated
  index[#index + 1] = id
end
-- Duplicate notes: written only over a record still delivered, so a note
-- built from a read made before the send never hides a newer outcome.
for _ = 1, tonumber(nxt()) do
  local id, eid, record, updated = nxt(), nxt(), nxt(), nxt()
  local rkey, ekey = keys_of(id, eid)
  local old = redis.call('GET', rkey)
  if old and string.find(old, '"status":"delivered"', 1, true) then
    redis.call('SET', rkey, record, 'EX', ttl)
    redis.call('SADD', ekey, id)
    redis.call('EXPIRE', ekey, ttl)
    index[#index + 1] = updated
    index[#index + 1] = id
  end
end
-- Grouped events: into the group's open digest (numbered when it opens), the
-- record naming it; a record grouped already (a reclaimed or repeated entry)
-- stays as it is and its event is not added again.
for _ = 1, tonumber(nxt()) do
  local id, eid, head, tail, updated = nxt(), nxt(), nxt(), nxt(), nxt()
  local gid, sub, channel, values, payload = nxt(), nxt(), nxt(), nxt(), nxt()
  local rkey, ekey = keys_of(id, eid)
  local wait, interval, most = tonumber(nxt()), tonumber(nxt()), tonumber(nxt())
  local old = redis.call('GET', rkey)
  if not (old and string.find(old, '"status":"grouped"', 1, true)) then
    local meta = gbase .. gid
    local digest = redis.call('HGET', meta, 'open')
    if not digest then
      digest = 'dg_' .. gid .. '_' .. redis.call('INCR', KEYS[7])
      redis.call('HSET', meta, 'open', digest, 'opened_at', ARGV[3])
    end
    redis.call('HSET', meta, 'subscription', sub, 'channel', channel, 'group', values,
               'interval', interval)
    redis.call('EXPIRE', meta, ttl)
    local ids, docs = dbase .. digest .. ':ids', dbase .. digest .. ':events'
    if redis.call('ZADD', ids, 'NX', now, eid) == 1 and redis.call('ZCARD', ids) <= most then
      redis.call('HSET', docs, eid, payload)
      redis.call('EXPIRE', docs, ttl)
    end
    redis.call('EXPIRE', ids, ttl)
    if not redis.call('ZSCORE', KEYS[6], gid) then
      -- opening: group_wait from now; within group_interval of the last flush: then
      local last = tonumber(redis.call('HGET', meta, 'last_flush'))
      local due = now + wait
      if last and now < last + interval then due = last + interval end
      redis.call('ZADD', KEYS[6], due, gid)
    end
    redis.call('SET', rkey, head .. digest .. tail, 'EX', ttl)
    redis.call('SADD', ekey, id)
    redis.call('EXPIRE', ekey, ttl)
    index[#index + 1] = updated
    index[#index + 1] = id
  end
end
zadd_all(KEYS[2], index)
-- Flushed digests (claimed by consumers.store.groups): their events go, the
-- group is due again group_interval from now if events wait, else idle.
for _ = 1, tonumber(nxt()) do
  local gid, digest = nxt(), nxt()
  local meta = gbase .. gid
  if redis.call('HGET', meta, 'flushing') == digest then
    redis.call('DEL', dbase .. digest .. ':ids', dbase .. digest .. ':events')
    redis.call('HDEL', meta, 'flushing')
    redis.call('HSET', meta, 'last_flush', ARGV[3])
    redis.call('EXPIRE', meta, ttl)
    local open = redis.call('HGET', meta, 'open')
    if open and redis.call('EXISTS', dbase .. open .. ':ids') == 1 then
      redis.call('ZADD', KEYS[6], now + tonumber(redis.call('HGET', meta, 'interval')), gid)
    else
      redis.call('ZREM', KEYS[6], gid)
    end
  end
end
local due = {}
for _ = 1, tonumber(nxt()) do
  local jkey, id, when, payload, sub, channel, attempts, created, history =
    nxt(), nxt(), nxt(), nxt(), nxt(), nxt(), nxt(), nxt(), nxt()
  redis.call('HSET', jkey, 'payload', payload, 'subscription', sub, 'channel', channel,
             'attempts', attempts, 'created_at', created, 'history', history)
  redis.call('EXPIRE', jkey, ttl)
  due[#due + 1] = when
  due[#due + 1] = id
end
zadd_all(KEYS[3], due)
for _ = 1, tonumber(nxt()) do
  local jkey, id = nxt(), nxt()
  redis.call('ZREM', KEYS[3], id)
  redis.call('DEL', jkey)
end
for _ = 1, tonumber(nxt()) do
  local name, state = nxt(), nxt()
  redis.call('HSET', KEYS[4], name, state)
end
for _ = 1, tonumber(nxt()) do
  local fields = {}
  for j = 1, tonumber(nxt()) * 2 do fields[j] = nxt() end
  redis.call('XADD', KEYS[5], '*', unpack(fields))
end
local acks = tonumber(nxt())
for first = i, i + acks - 1, 4000 do
  redis.call('XACK', KEYS[1], group, unpack(ARGV, first, math.min(first + 3999, i + acks - 1)))
end
return acks
"""

# Where the script writes the digest id into a grouped record.
_PENDING_JSON: Final = b'"refers_to":' + orjson.dumps(PENDING_DIGEST)
_MARK = "\x00id\x00"
_DLQ_META = ("dlq_reason", "dlq_error", "dlq_at", "dlq_original_id", "dlq_group")


class Committer:
    def __init__(self, redis: aioredis.Redis, keys: Keys, group: str, ttl: float) -> None:
        self.keys = keys
        self.group = group
        self.ttl = int(ttl)
        self._script = redis.register_script(_COMMIT)
        # The script builds a record's keys: delivery base + id, head + event id + tail.
        head, found, tail = keys.event_deliveries(_MARK).partition(_MARK)
        if not found or keys.delivery(_MARK) != keys.delivery("") + _MARK:
            raise ValueError(f"key names of {keys.prefix!r} do not end with the id they name")
        self._record_bases = (keys.delivery(""), head, tail)

    async def commit(self, settlements: Sequence[Settlement], now: float) -> None:
        """Apply every settlement in one atomic script call."""
        async with translated("commit"):
            await self._script(keys=self._keys(), args=self.arguments(settlements, now))

    def _keys(self) -> list[str]:
        keys = self.keys
        return [
            keys.events,
            keys.deliveries_index,
            keys.retries,
            keys.channel_state,
            keys.dlq,
            keys.groups,
            keys.digest_sequence,
        ]

    def arguments(self, settlements: Sequence[Settlement], now: float) -> list[Any]:
        keys = self.keys
        records: list[Any] = []
        duplicates: list[Any] = []
        retries: list[Any] = []
        done: list[Any] = []
        disable: list[Any] = []
        dead: list[Any] = []
        acks: list[str] = []
        for settlement in settlements:
            for record in settlement.records:
                records += self._record(record)
            for record in settlement.duplicates:
                duplicates += self._record(record)
            for job, due in settlement.retries:
                retries += (
                    keys.retry_job(job.delivery_id),
                    job.delivery_id,
                    due,
                    job.payload,
                    job.subscription,
                    job.channel,
                    job.attempts,
                    job.created_at,
                    job.history_json(),
                )
            for delivery in settlement.retries_done:
                done += (keys.retry_job(delivery), delivery)
            for name, state in settlement.disable:
                disable += (name, orjson.dumps(state.to_dict()))
            if settlement.dead_letter is not None:
                fields = self._dead_letter_fields(settlement.dead_letter, now)
                dead += (len(fields) // 2, *fields)
            if settlement.ack is not None:
                acks.append(settlement.ack)
        return [
            self.group,
            self.ttl,
            now,
            keys.group(""),
            keys.digest(""),
            *self._record_bases,
            len(records) // 4,
            *records,
            len(duplicates) // 4,
            *duplicates,
            *self._group_sections(settlements),
            len(retries) // 9,
            *retries,
            len(done) // 2,
            *done,
            len(disable) // 2,
            *disable,
            sum(1 for settled in settlements if settled.dead_letter is not None),
            *dead,
            len(acks),
            *acks,
        ]

    def _group_sections(self, settlements: Sequence[Settlement]) -> list[Any]:
        """The grouped and the flushed sections (see ``consumers.store.groups``)."""
        grouped = [item for settled in settlements for item in settled.grouped]
        flushed = [item for settled in settlements for item in settled.flushed]
        args: list[Any] = [len(grouped)]
        for item in grouped:
            record = item.record
            head, found, tail = record.to_json().rpartition(_PENDING_JSON)
            if not found:
                raise ValueError(f"grouped record {record.id} does not refer to PENDING_DIGEST")
            args += (
                record.id,
                record.event_id,
                head + _PENDING_JSON[: -len(PENDING_DIGEST) - 1],
                b'"' + tail,
                record.updated_at,
                item.group_id,
                record.subscription,
                record.channel,
                item.values,
                item.payload,
                item.wait,
                item.interval,
                item.max_events,
            )
        args.append(len(flushed))
        for flush in flushed:
            args += (flush.group_id, flush.digest_id)
        return args

    @staticmethod
    def _record(record: DeliveryRecord) -> tuple[Any, ...]:
        return (record.id, record.event_id, record.to_json(), record.updated_at)

    def _dead_letter_fields(self, order: DeadLetterOrder, now: float) -> list[Any]:
        """The entry's own fields (not an earlier dead-lettering's), then why and when."""
        fields: list[Any] = []
        for key, raw in order.entry.fields.items():
            if not key.startswith(b"dlq_"):
                fields += (key, raw)
        meta = (order.reason, order.error[:2000], repr(now), order.entry.id, self.group)
        for key_name, text in zip(_DLQ_META, meta, strict=True):
            fields += (key_name, text)
        return fields
