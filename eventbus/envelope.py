"""The canonical event envelope: one pydantic model, JSON on the wire."""

from __future__ import annotations

import hashlib
import re
import threading
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from ulid import ULID

from .errors import EnvelopeError
from .terminal import printable

__all__ = [
    "ENVELOPE_VERSION",
    "Actor",
    "ActorType",
    "AlertAction",
    "AlertRef",
    "EnvelopeLimits",
    "Event",
    "Outcome",
    "Resource",
    "Severity",
    "decode",
    "decode_entry",
    "encode",
    "validate_event_type",
]

ENVELOPE_VERSION = 1
# \Z, not $: "$" also matches before a trailing newline.
ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}\Z")
EVENT_TYPE_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+\Z")

# C0 and C1 control characters: in an identifier they can only be an attack
# on whatever prints it (a terminal title, a cleared screen, a rewritten line).
# Checked by pydantic-core's own regex (no Python call per field on the hot
# path); _describe() turns its error into a plain sentence.
_PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"
_PRINTABLE_MESSAGE = "contains a control character: identifiers must be printable text"


NonEmpty = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, strip_whitespace=True, pattern=_PRINTABLE),
]
MetadataKey = Annotated[str, StringConstraints(pattern=_PRINTABLE)]


class Outcome(StrEnum):
    SUCCESS = "success"
    ERROR = "error"


class Severity(StrEnum):
    """How bad an event is: ``debug`` < ``info`` < ``warning`` < ``error`` < ``critical``."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 (debug) to 4 (critical): compare severities by this."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {level: rank for rank, level in enumerate(Severity)}


class AlertAction(StrEnum):
    """What an event does to its alert (see ``Event.alert``)."""

    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


AlertKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=_PRINTABLE),
]


class AlertRef(BaseModel):
    """The alert an event belongs to: ``key`` dedupes within the team (``backup-failed:h1``).

    ``action`` absent follows the outcome: ``success`` resolves, anything else triggers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: AlertKey
    action: AlertAction | None = None


class ActorType(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    SYSTEM = "system"


class Actor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ActorType
    id: NonEmpty | None = None
    name: NonEmpty | None = None


class Resource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: NonEmpty
    type: NonEmpty


class EnvelopeLimits(BaseModel):
    """Bounds that keep envelopes small; configurable under ``envelope:``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_metadata_keys: int = Field(64, ge=0)
    max_metadata_value_bytes: int = Field(1024, ge=1)
    max_envelope_bytes: int = Field(65536, ge=512)


DEFAULT_LIMITS = EnvelopeLimits()


def validate_event_type(value: str) -> str:
    if not EVENT_TYPE_RE.match(value):
        raise ValueError(
            f"event type {value!r} is not a dotted lowercase name: use segments of "
            "[a-z0-9_] joined by dots, at least two, e.g. 'capsule.create'"
        )
    return value


def _timestamp_text(value: datetime) -> str:
    # isoformat pads the year to 4 digits (strftime's %Y does not on glibc).
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Defaulted(threading.local):
    """Which of ``id`` / ``timestamp`` the model filled in itself (see ``decode``)."""

    id = False
    timestamp = False


_defaulted = _Defaulted()


def _new_id() -> str:
    _defaulted.id = True
    return str(ULID())


def _now() -> datetime:
    _defaulted.timestamp = True
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Event(BaseModel):
    """An event envelope.

    ``id`` (a ULID) and ``timestamp`` are filled in when absent (from the
    stream entry when decoded from one, see ``decode``). ``metadata``
    is a small string-to-string map; ``error`` is allowed only with
    ``outcome="error"``.

    >>> Event(event="capsule.create", outcome="success", team_id="team-1",
    ...       actor={"type": "user", "id": "u1"},
    ...       resource={"id": "c1", "type": "capsule"})  # doctest: +SKIP
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=_new_id)
    event: str
    outcome: Outcome | None = None
    timestamp: datetime = Field(default_factory=_now)
    team_id: NonEmpty
    actor: Actor = Actor(type=ActorType.SYSTEM)
    resource: Resource
    metadata: dict[MetadataKey, str] = Field(default_factory=dict)
    error: Annotated[str, StringConstraints(max_length=4096)] | None = None
    severity: Severity | None = None
    alert: AlertRef | None = None
    v: StrictInt = ENVELOPE_VERSION

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        # A regex instead of ULID.from_str: same rule, and decoding every
        # entry is on the worker's hot path.
        canonical = value.upper()
        if not ULID_RE.match(canonical):
            raise ValueError(
                f"id {value[:40]!r} is not a ULID (26 Crockford base32 characters); "
                "leave it out to have one generated"
            )
        return canonical  # one idempotency key per event, whatever the case

    @field_validator("event")
    @classmethod
    def _check_event(cls, value: str) -> str:
        return validate_event_type(value)

    @field_validator("timestamp")
    @classmethod
    def _check_timestamp(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp has no time zone: send RFC 3339 UTC, e.g. ...T12:00:00Z")
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00
            raise ValueError("timestamp is out of range once converted to UTC") from None
        return value.replace(microsecond=value.microsecond // 1000 * 1000)

    @field_serializer("timestamp")
    def _dump_timestamp(self, value: datetime) -> str:
        return _timestamp_text(value)

    @property
    def timestamp_text(self) -> str:
        """``timestamp`` as on the wire: RFC 3339 UTC with milliseconds and ``Z``."""
        return _timestamp_text(self.timestamp)

    @field_validator("v")
    @classmethod
    def _check_version(cls, value: int) -> int:
        if not 1 <= value <= ENVELOPE_VERSION:
            raise ValueError(f"envelope version {value} is not supported (this build reads v1)")
        return value

    @model_validator(mode="after")
    def _check_error(self) -> Self:
        if self.error is not None and self.outcome is not Outcome.ERROR:
            raise ValueError("'error' is only allowed with outcome 'error'")

        # Size limits are configurable (envelope.*), so they are checked by
        # encode()/decode() against the configured limits, not here.
        return self

    def check_limits(self, limits: EnvelopeLimits) -> None:
        """Raise ``ValueError`` when metadata or size exceed ``limits``."""
        if len(self.metadata) > limits.max_metadata_keys:
            raise ValueError(
                f"metadata has {len(self.metadata)} keys, more than the limit of "
                f"{limits.max_metadata_keys} (envelope.max_metadata_keys)"
            )
        for key, value in self.metadata.items():
            if not key or len(key) > 128:
                raise ValueError(f"metadata key {key[:40]!r} must be 1-128 characters")
            size = len(value.encode())
            if size > limits.max_metadata_value_bytes:
                raise ValueError(
                    f"metadata[{key!r}] is {size} bytes, more than the limit of "
                    f"{limits.max_metadata_value_bytes} (envelope.max_metadata_value_bytes)"
                )

    @property
    def outcome_name(self) -> str:
        """``success``, ``error`` or ``none``: the value subscriptions match on."""
        return self.outcome.value if self.outcome is not None else "none"

    @property
    def level(self) -> Severity:
        """The severity, or when absent ``error`` for an error outcome, else ``info``."""
        if self.severity is not None:
            return self.severity
        return Severity.ERROR if self.outcome is Outcome.ERROR else Severity.INFO

    @property
    def alert_action(self) -> AlertAction | None:
        """What this event does to its alert: the given action, else ``resolve`` for a
        success and ``trigger`` otherwise; ``None`` for an event without ``alert``."""
        if self.alert is None:
            return None
        if self.alert.action is not None:
            return self.alert.action
        return AlertAction.RESOLVE if self.outcome is Outcome.SUCCESS else AlertAction.TRIGGER

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


def encode(event: Event, limits: EnvelopeLimits = DEFAULT_LIMITS) -> bytes:
    """JSON bytes of ``event``; raises ``EnvelopeError`` if it is over the limits."""
    try:
        event.check_limits(limits)
    except ValueError as exc:
        raise EnvelopeError(f"event {event.id}: {exc}") from None
    data = event.to_json().encode()
    if len(data) > limits.max_envelope_bytes:
        raise EnvelopeError(
            f"event {event.id} encodes to {len(data)} bytes, more than the limit of "
            f"{limits.max_envelope_bytes} (envelope.max_envelope_bytes): shrink metadata"
        )
    return data


def decode(
    data: bytes | str, limits: EnvelopeLimits = DEFAULT_LIMITS, *, entry_id: str | None = None
) -> Event:
    """Parse and validate an envelope.

    Raises ``EnvelopeError`` (and nothing else) for anything that is not a
    valid envelope: bad UTF-8, bad JSON, missing or invalid fields, too large.

    ``entry_id`` is the stream entry the envelope was read from. Producers in
    other languages may leave out ``id`` and ``timestamp``; for their entries
    both are derived from the entry (``entry_ids``), so every receive of it
    has the same event id, delivery ids and ``webhook-id``.
    """
    size = len(data.encode() if isinstance(data, str) else data)
    if size > limits.max_envelope_bytes:
        raise EnvelopeError(
            f"envelope is {size} bytes, more than the limit of {limits.max_envelope_bytes}"
        )
    _defaulted.id = _defaulted.timestamp = False
    try:
        event = Event.model_validate_json(data)
        event.check_limits(limits)
    except ValidationError as exc:
        raise EnvelopeError(_describe(exc)) from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise EnvelopeError(f"invalid envelope: {exc}") from None
    if entry_id is not None and (_defaulted.id or _defaulted.timestamp):
        event = _from_entry(event, entry_id, data, _defaulted.id, _defaulted.timestamp)
    return event


def decode_entry(
    data: bytes, limits: EnvelopeLimits = DEFAULT_LIMITS, *, entry_id: str
) -> tuple[Event, bytes]:
    """``decode(data, limits, entry_id=...)`` and the payload to keep for later attempts.

    That is ``data`` itself, unless ``id`` or ``timestamp`` had to be derived:
    then the envelope with them filled in, so a retry decoded from it has the
    same event id without knowing the stream entry.
    """
    event = decode(data, limits, entry_id=entry_id)
    if _defaulted.id or _defaulted.timestamp:
        return event, event.to_json().encode()
    return event, data


def entry_ids(entry_id: str, data: bytes | str) -> tuple[str, datetime]:
    """The event id and timestamp of an entry whose envelope has neither.

    The timestamp is the entry id's milliseconds (when the broker stored it);
    the id is a ULID of that time whose random part is a digest of the entry
    id and the payload, so it is stable across receives and distinct per entry.
    """
    millis_text, _, _sequence = entry_id.partition("-")
    millis = int(millis_text) if millis_text.isdigit() else 0
    payload = data.encode() if isinstance(data, str) else data
    digest = hashlib.sha256(entry_id.encode() + b"\0" + payload).digest()
    ulid = ULID.from_bytes(millis.to_bytes(6, "big") + digest[:10])
    return str(ulid), datetime.fromtimestamp(millis / 1000, UTC)


def _from_entry(
    event: Event, entry_id: str, data: bytes | str, new_id: bool, new_timestamp: bool
) -> Event:
    derived_id, derived_timestamp = entry_ids(entry_id, data)
    update: dict[str, Any] = {}
    if new_id:
        update["id"] = derived_id
    if new_timestamp:
        update["timestamp"] = derived_timestamp
    return event.model_copy(update=update)


def parse_event(data: dict[str, Any], limits: EnvelopeLimits = DEFAULT_LIMITS) -> Event:
    """Validate a mapping into an ``Event`` within ``limits``, raising ``EnvelopeError``."""
    try:
        event = Event.model_validate(data)
        event.check_limits(limits)
    except ValidationError as exc:
        raise EnvelopeError(_describe(exc)) from None
    except ValueError as exc:
        raise EnvelopeError(f"invalid envelope: {exc}") from None
    return event


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        # a key with a control character is part of the location: shown escaped
        loc = printable(".".join(str(p) for p in err["loc"])) or "envelope"
        unprintable = (
            err["type"] == "string_pattern_mismatch" and err["ctx"]["pattern"] == _PRINTABLE
        )
        parts.append(f"{loc}: {_PRINTABLE_MESSAGE if unprintable else err['msg']}")
    more = exc.error_count() - len(parts)
    suffix = f" (and {more} more)" if more > 0 else ""
    return "invalid envelope: " + "; ".join(parts) + suffix
