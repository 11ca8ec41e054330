"""API-defined channels and subscriptions in Redis, each owned by one team.

Layout (prefix ``p``, all under its hash tag except the Pub/Sub channel):
- ``{p}:console:channel``        hash: name -> JSON document of one channel
- ``{p}:console:subscription``   hash: name -> JSON document of one subscription
- ``{p}:console:version``        counter raised by every change
- ``{p}:console:audit``          stream: who changed what and when (never a secret)
- ``p:console:changed``          Pub/Sub channel: the new version, on every change

A document is ``{"name", "team", "plain": {...}, "sealed": "v1...." | null,
"updated_at", "updated_by"}``: ``plain`` holds the fields that are not
secret, ``sealed`` the secret ones encrypted (``consumers.console.crypto``).
Every change is one script: the document (written whole, so concurrent
writers never mix: the last one wins), the version, the audit entry and
the notice together. ``snapshot()`` reads the version and both hashes in one
MULTI, so a reader never sees half of a change.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import reply_text, translated
from eventbus.keys import Keys
from eventbus.settings import SecuritySettings

from .crypto import Sealer

__all__ = ["AUDIT_MAXLEN", "ConsoleStore", "Item", "Snapshot", "note_audit"]

AUDIT_MAXLEN: Final = 10_000

# KEYS: hash, version, audit. ARGV: name, json (or "" to delete), create ("1"/"0"),
# channel, maxlen, then the audit fields as pairs. Returns the version, -1 when
# creating a name that exists, 0 when deleting one that does not.
_WRITE: Final = """
if ARGV[3] == '1' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return -1 end
if ARGV[2] == '' then
  if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
local version = redis.call('INCR', KEYS[2])
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
fields[#fields + 1] = 'version'
fields[#fields + 1] = version
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
redis.call('PUBLISH', ARGV[4], version)
return version
"""


@dataclass(frozen=True, slots=True)
class Item:
    """One stored channel or subscription; ``body`` has its secrets in clear."""

    kind: str  # "channel" | "subscription"
    name: str
    team: str
    body: dict[str, Any]
    updated_at: float = 0.0
    updated_by: str = ""

    def __repr__(self) -> str:  # the body may hold secrets
        return f"Item({self.kind} {self.name!r} of team {self.team!r})"

    @property
    def context(self) -> str:
        """The associated data its sealed secrets are bound to."""
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every API-defined item at one version."""

    version: int
    channels: list[Item] = field(default_factory=list)
    subscriptions: list[Item] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # items that could not be opened


class ConsoleStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, security: SecuritySettings) -> None:
        self.redis = redis
        self.keys = keys
        self.sealer = Sealer(security)
        self._write = redis.register_script(_WRITE)

    def __repr__(self) -> str:
        return f"ConsoleStore(prefix={self.keys.prefix!r})"

    # -- documents ---------------------------------------------------------------

    def encode(self, item: Item, secret_fields: Iterable[str]) -> bytes:
        """The stored document; raises ``SealError`` for secrets without a key."""
        secret = set(secret_fields) & set(item.body)
        plain = {key: value for key, value in item.body.items() if key not in secret}
        sealed = None
        if secret:
            hidden = orjson.dumps({key: item.body[key] for key in sorted(secret)})
            sealed = self.sealer.seal(hidden, item.context)
        doc = {
            "name": item.name,
            "team": item.team,
            "plain": plain,
            "sealed": sealed,
            "updated_at": item.updated_at,
            "updated_by": item.updated_by,
        }
        return orjson.dumps(doc)

    def decode(self, kind: str, raw: bytes | str) -> Item:
        """The item of a stored document; raises ``SealError`` when it cannot be opened."""
        doc = orjson.loads(raw)
        body = dict(doc["plain"])
        item = Item(kind, doc["name"], doc["team"], body, doc["updated_at"], doc["updated_by"])
        if doc.get("sealed"):
            body.update(orjson.loads(self.sealer.open(doc["sealed"], item.context)))
        return item

    # -- reads ---------------------------------------------------------------------

    async def version(self) -> int:
        async with translated("read the console version"):
            raw = await self.redis.get(self.keys.console_version)
        return int(raw or 0)

    async def get(self, kind: str, name: str) -> Item | None:
        async with translated("read a console item"):
            raw = await self.redis.hget(self.keys.console(kind), name)
        return None if raw is None else self.decode(kind, raw)

    async def snapshot(self) -> Snapshot:
        """Every item at one version, read in one transaction."""
        async with (
            translated("read the console items"),
            self.redis.pipeline(transaction=True) as pipe,
        ):
            pipe.get(self.keys.console_version)
            pipe.hgetall(self.keys.console("channel"))
            pipe.hgetall(self.keys.console("subscription"))
            version, channels, subscriptions = await pipe.execute()
        problems: list[str] = []
        lists: dict[str, list[Item]] = {"channel": [], "subscription": []}
        for kind, docs in (("channel", channels), ("subscription", subscriptions)):
            for name, raw in sorted(docs.items()):
                try:
                    lists[kind].append(self.decode(kind, raw))
                except Exception as exc:  # a bad document must not hide the others
                    problems.append(f"{kind} {reply_text(name)!r}: {exc}")
        return Snapshot(int(version or 0), lists["channel"], lists["subscription"], problems)

    async def audit(self, teams: frozenset[str] | None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit entries of ``teams`` (every team for ``None``)."""
        rows: list[dict[str, Any]] = []
        last = "+"
        while len(rows) < limit:
            async with translated("read the console audit"):
                entries = await self.redis.xrevrange(self.keys.console_audit, last, "-", 500) or []
            for entry_id, fields in entries:
                row = {reply_text(k): reply_text(v) for k, v in (fields or {}).items()}
                if teams is None or row.get("team") in teams:
                    rows.append({"id": reply_text(entry_id), **row})
            if len(entries) < 500:
                break
            last = "(" + reply_text(entries[-1][0])
        return rows[:limit]

    # -- writes ----------------------------------------------------------------

    async def put(
        self,
        item: Item,
        secret_fields: Iterable[str],
        *,
        action: str,
        changed: Iterable[str] = (),
    ) -> int | None:
        """Write ``item`` whole; ``None`` when ``action`` is create and the name exists."""
        doc = self.encode(item, secret_fields)
        version = await self._run(item, doc, action, changed)
        return None if version < 0 else version

    async def delete(self, item: Item, *, actor: str) -> bool:
        gone = Item(item.kind, item.name, item.team, {}, time.time(), actor)
        return await self._run(gone, b"", "delete", ()) > 0

    async def _run(self, item: Item, doc: bytes, action: str, changed: Iterable[str]) -> int:
        audit = {
            "at": f"{item.updated_at:.3f}",
            "actor": item.updated_by,
            "team": item.team,
            "kind": item.kind,
            "name": item.name,
            "action": action,
            "fields": ",".join(sorted(changed)),
        }
        args: list[Any] = [
            item.name,
            doc,
            "1" if action == "create" else "0",
            self.keys.console_changed,
            AUDIT_MAXLEN,
        ]
        for key, value in audit.items():
            args += [key, value]
        keys = [self.keys.console(item.kind), self.keys.console_version, self.keys.console_audit]
        async with translated(f"{action} a console {item.kind}"):
            return int(await self._write(keys=keys, args=args))


async def note_audit(
    redis: aioredis.Redis, keys: Keys, *, actor: str, team: str, kind: str, name: str, action: str
) -> None:
    """Add an entry to the audit stream for a change that is not an item write.

    Channel disable/enable goes here (``consumers.channel_switch``); ``team``
    is ``""`` for a channel of the YAML file, which only admin tokens see.
    """
    fields = {
        "at": f"{time.time():.3f}",
        "actor": actor,
        "team": team,
        "kind": kind,
        "name": name,
        "action": action,
        "fields": "",
    }
    async with translated(f"note {action} of {kind} {name!r} in the console audit"):
        await redis.xadd(keys.console_audit, fields, maxlen=AUDIT_MAXLEN, approximate=True)  # type: ignore[arg-type]
