"""The event envelope: round trips, every validation error, decoding anything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ulid import ULID

from eventbus.envelope import (
    ENVELOPE_VERSION,
    ActorType,
    EnvelopeLimits,
    Event,
    Outcome,
    decode,
    encode,
    parse_event,
    validate_event_type,
)
from eventbus.errors import EnvelopeError, EventBusError

BASE: dict[str, Any] = {
    "event": "capsule.create",
    "team_id": "team-1",
    "resource": {"id": "c1", "type": "capsule"},
}


def envelope(**changes: Any) -> dict[str, Any]:
    data = {**BASE, **changes}
    return {k: v for k, v in data.items() if v is not _DROP}


_DROP = object()


# -- round trips ----------------------------------------------------------------


def test_defaults_fill_id_timestamp_actor_and_version() -> None:
    ev = parse_event(envelope())
    ULID.from_str(ev.id)  # a real ULID
    assert ev.timestamp.tzinfo is not None
    assert ev.timestamp.utcoffset() == timedelta(0)
    assert ev.timestamp.microsecond % 1000 == 0
    assert ev.actor.type is ActorType.SYSTEM
    assert ev.v == ENVELOPE_VERSION
    assert ev.outcome is None
    assert ev.outcome_name == "none"
    assert parse_event(envelope()).id != ev.id


def test_full_round_trip_through_bytes() -> None:
    ev = Event(
        id=str(ULID()),
        event="capsule.destroy",
        outcome="error",
        timestamp=datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC),
        team_id="team-1",
        actor={"type": "api_key", "id": "k1", "name": "deploy bot"},
        resource={"id": "c9", "type": "capsule"},
        metadata={"region": "eu-west", "ünïcode": "välue ✓"},
        error="quota exceeded",
    )
    data = encode(ev)
    assert isinstance(data, bytes)
    back = decode(data)
    assert back == ev
    assert decode(data.decode()) == ev  # str is accepted too
    assert back.outcome_name == "error"
    wire = json.loads(data)
    assert wire["timestamp"] == "2024-05-06T07:08:09.123Z"
    assert wire["actor"] == {"type": "api_key", "id": "k1", "name": "deploy bot"}
    assert wire["v"] == 1


def test_absent_optional_fields_are_left_out_of_the_json() -> None:
    wire = json.loads(encode(parse_event(envelope())))
    assert "outcome" not in wire
    assert "error" not in wire
    assert set(wire) == {
        "id",
        "event",
        "timestamp",
        "team_id",
        "actor",
        "resource",
        "metadata",
        "v",
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("2024-01-01T12:00:00Z", "2024-01-01T12:00:00.000Z", id="z"),
        pytest.param("2024-01-01T14:30:00+02:30", "2024-01-01T12:00:00.000Z", id="offset"),
        pytest.param("2024-01-01T12:00:00.123456Z", "2024-01-01T12:00:00.123Z", id="micro-cut"),
        pytest.param("2024-01-01T12:00:00.999999Z", "2024-01-01T12:00:00.999Z", id="truncates"),
        pytest.param("2023-12-31T23:00:00-01:00", "2024-01-01T00:00:00.000Z", id="next-day"),
        pytest.param("0999-01-01T00:00:00Z", "0999-01-01T00:00:00.000Z", id="year-padded"),
    ],
)
def test_timestamps_normalised_to_utc_milliseconds_with_z(given: str, expected: str) -> None:
    ev = decode(json.dumps(envelope(timestamp=given)))
    assert ev.timestamp.utcoffset() == timedelta(0)
    assert json.loads(ev.to_json())["timestamp"] == expected
    assert decode(encode(ev)) == ev


def test_aware_datetime_of_another_zone_is_converted() -> None:
    tz = timezone(timedelta(hours=-5))
    ev = parse_event(envelope(timestamp=datetime(2024, 1, 1, 7, 0, 0, 500, tzinfo=tz)))
    assert ev.timestamp == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert ev.timestamp.tzinfo == UTC


# -- validation errors -----------------------------------------------------------

_BIG = "x" * 1025


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        pytest.param({"event": "Capsule.Create"}, "dotted lowercase", id="event-uppercase"),
        pytest.param({"event": "capsule"}, "dotted lowercase", id="event-one-segment"),
        pytest.param({"event": "capsule..create"}, "dotted lowercase", id="event-empty-seg"),
        pytest.param({"event": "capsule.create."}, "dotted lowercase", id="event-trailing-dot"),
        pytest.param({"event": "capsule create"}, "dotted lowercase", id="event-space"),
        pytest.param({"event": "capsule.create\n"}, "dotted lowercase", id="event-newline"),
        pytest.param({"event": ""}, "dotted lowercase", id="event-empty"),
        pytest.param({"event": _DROP}, "event: Field required", id="event-missing"),
        pytest.param({"outcome": "failure"}, "outcome", id="bad-outcome"),
        pytest.param({"outcome": "none"}, "outcome", id="outcome-none-string"),
        pytest.param({"team_id": ""}, "team_id", id="empty-team"),
        pytest.param({"team_id": "   "}, "team_id", id="blank-team"),
        pytest.param({"team_id": _DROP}, "team_id: Field required", id="missing-team"),
        pytest.param({"resource": {"id": "", "type": "capsule"}}, "resource.id", id="empty-res-id"),
        pytest.param({"resource": {"id": "c1", "type": ""}}, "resource.type", id="empty-res-type"),
        pytest.param({"resource": _DROP}, "resource: Field required", id="missing-resource"),
        pytest.param({"actor": {"type": "robot"}}, "actor.type", id="bad-actor-type"),
        pytest.param({"actor": {"type": "user", "x": 1}}, "actor.x", id="actor-unknown-field"),
        pytest.param(
            {"metadata": {f"k{i}": "v" for i in range(65)}}, "65 keys", id="metadata-65-keys"
        ),
        pytest.param({"metadata": {"big": _BIG}}, "1025 bytes", id="metadata-value-1k"),
        pytest.param({"metadata": {"big": "é" * 513}}, "1026 bytes", id="metadata-value-utf8"),
        pytest.param({"metadata": {"": "v"}}, "metadata key", id="metadata-empty-key"),
        pytest.param({"metadata": {"n": 1}}, "metadata.n", id="metadata-non-string"),
        pytest.param({"error": "boom"}, "only allowed with outcome 'error'", id="error-no-outcome"),
        pytest.param(
            {"outcome": "success", "error": "boom"},
            "only allowed with outcome 'error'",
            id="error-with-success",
        ),
        pytest.param({"timestamp": "2024-01-01T12:00:00"}, "no time zone", id="naive-timestamp"),
        pytest.param({"timestamp": "yesterday"}, "timestamp", id="garbage-timestamp"),
        pytest.param(
            {"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp", id="timestamp-underflow"
        ),
        pytest.param(
            {"timestamp": "9999-12-31T23:59:59-01:00"}, "timestamp", id="timestamp-overflow"
        ),
        pytest.param({"id": "not-a-ulid"}, "is not a ULID", id="bad-ulid"),
        pytest.param({"id": "U" * 26}, "is not a ULID", id="ulid-bad-alphabet"),
        pytest.param({"id": "8" + "0" * 25}, "is not a ULID", id="ulid-overflow"),
        pytest.param({"colour": "red"}, "colour: Extra inputs are not permitted", id="unknown"),
        pytest.param({"v": 2}, "version 2 is not supported", id="v2"),
        pytest.param({"v": 0}, "version 0 is not supported", id="v0"),
    ],
)
def test_invalid_envelopes_are_rejected_with_a_clear_message(
    changes: dict[str, Any], needle: str
) -> None:
    data = envelope(**changes)
    with pytest.raises(EnvelopeError) as info:
        decode(json.dumps(data))
    assert needle in str(info.value)
    assert str(info.value).startswith("invalid envelope")
    with pytest.raises(EnvelopeError) as info2:
        parse_event(data)
    assert needle in str(info2.value)


def test_envelope_errors_belong_to_the_tree_and_are_value_errors() -> None:
    with pytest.raises(EventBusError):
        decode(b"{")
    with pytest.raises(ValueError):
        decode(b"{")


def test_sixty_four_metadata_keys_and_one_kib_values_are_allowed() -> None:
    ev = parse_event(envelope(metadata={f"k{i}": "x" * 900 for i in range(64)}))
    assert decode(encode(ev)) == ev
    assert parse_event(envelope(metadata={"k": "x" * 1024})).metadata["k"] == "x" * 1024


def test_envelope_over_64_kib_is_rejected_on_decode_and_encode() -> None:
    # 64 values of 1 KiB fit the metadata limits but make a 66 KB envelope.
    ev = parse_event(envelope(metadata={f"k{i}": "x" * 1024 for i in range(64)}))
    assert len(ev.to_json()) > 65536
    with pytest.raises(EnvelopeError, match="more than the limit of 65536"):
        encode(ev)
    with pytest.raises(EnvelopeError, match="more than the limit of 65536"):
        decode(ev.to_json())
    # bytes over the limit are refused before parsing
    padded = json.dumps(envelope()) + " " * 65536
    with pytest.raises(EnvelopeError, match="more than the limit of 65536"):
        decode(padded.encode())


def test_configured_limits_apply_to_encode_and_decode() -> None:
    ev = parse_event(envelope(metadata={"a": "1", "b": "2", "c": "x" * 100}))
    with pytest.raises(EnvelopeError, match=r"3 keys, more than the limit of 2"):
        encode(ev, EnvelopeLimits(max_metadata_keys=2))
    with pytest.raises(EnvelopeError, match=r"100 bytes, more than the limit of 50"):
        decode(encode(ev), EnvelopeLimits(max_metadata_value_bytes=50))


def test_event_is_immutable() -> None:
    ev = parse_event(envelope())
    with pytest.raises(ValueError):
        ev.team_id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("capsule.create", id="two"),
        pytest.param("template.snapshot.create", id="three"),
        pytest.param("a_b.c_1", id="underscores-digits"),
    ],
)
def test_valid_event_types(name: str) -> None:
    assert validate_event_type(name) == name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("capsule.create\n", id="trailing-newline"),
        pytest.param("capsule.*", id="glob"),
        pytest.param(".capsule", id="leading-dot"),
        pytest.param("capsule-x.create", id="dash"),
    ],
)
def test_invalid_event_types(name: str) -> None:
    with pytest.raises(ValueError, match="dotted lowercase"):
        validate_event_type(name)


def test_outcome_values() -> None:
    assert {o.value for o in Outcome} == {"success", "error"}
    assert parse_event(envelope(outcome="success")).outcome_name == "success"


# -- decode never raises anything but EnvelopeError -----------------------------

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
_json = st.recursive(
    _json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_FIELDS = ["id", "event", "outcome", "timestamp", "team_id", "actor", "resource", "metadata"]
_plausible = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.just(str(ULID())), st.text(max_size=30)),
        "event": st.one_of(st.sampled_from(["capsule.create", "host.down"]), st.text()),
        "outcome": st.one_of(st.sampled_from(["success", "error", None]), _json_leaf),
        "timestamp": st.one_of(
            st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
            st.datetimes().map(lambda d: d.isoformat()),
            _json_leaf,
        ),
        "team_id": st.one_of(st.text(max_size=10), _json_leaf),
        "actor": st.one_of(
            st.fixed_dictionaries({"type": st.sampled_from(["user", "system", "x"])}), _json
        ),
        "resource": st.one_of(
            st.fixed_dictionaries({"id": st.text(max_size=5), "type": st.text(max_size=5)}),
            _json,
        ),
        "metadata": st.one_of(st.dictionaries(st.text(max_size=5), st.text(max_size=5)), _json),
        "error": _json_leaf,
        "v": _json_leaf,
    },
)


def _decodes_or_envelope_error(data: bytes | str) -> None:
    try:
        ev = decode(data)
    except EnvelopeError:
        return
    assert isinstance(ev, Event)
    # whatever decodes, encodes and decodes again to the same event
    assert decode(encode(ev)) == ev


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_decode_of_arbitrary_bytes(data: bytes) -> None:
    _decodes_or_envelope_error(data)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_decode_of_arbitrary_json(value: Any) -> None:
    _decodes_or_envelope_error(json.dumps(value))


@settings(max_examples=500, deadline=None)
@given(_plausible)
def test_decode_of_arbitrary_envelope_like_objects(value: dict[str, Any]) -> None:
    _decodes_or_envelope_error(json.dumps(value))


@settings(max_examples=200, deadline=None)
@given(st.datetimes(timezones=st.timezones()))
def test_any_aware_timestamp_either_round_trips_or_is_an_envelope_error(when: datetime) -> None:
    _decodes_or_envelope_error(json.dumps(envelope(timestamp=when.isoformat())))


def test_deeply_nested_json_is_an_envelope_error() -> None:
    with pytest.raises(EnvelopeError):
        decode("[" * 10000 + "]" * 10000)
    with pytest.raises(EnvelopeError):
        decode(b"\xff\xfe not utf-8")


@settings(max_examples=300, deadline=None)
@given(_plausible)
def test_parse_event_of_arbitrary_mappings(value: dict[str, Any]) -> None:
    try:
        ev = parse_event(value)
    except EnvelopeError:
        return
    assert decode(encode(ev)) == ev


def test_configured_limits_can_be_raised() -> None:
    raised = EnvelopeLimits(
        max_metadata_keys=100, max_metadata_value_bytes=4096, max_envelope_bytes=1 << 20
    )
    data = json.dumps(envelope(metadata={f"k{i}": "x" * 2000 for i in range(70)}))
    assert len(decode(data, raised).metadata) == 70


def test_ids_are_canonical_upper_case() -> None:
    ev = parse_event(envelope(id="01jd5z7x3m0q8r2t6v9w1y4b7c"))
    assert ev.id == "01JD5Z7X3M0Q8R2T6V9W1Y4B7C"


def test_version_must_be_an_integer_not_a_boolean() -> None:
    with pytest.raises(EnvelopeError, match="v"):
        parse_event(envelope(v=True))


def test_text_input_is_measured_in_bytes() -> None:
    limits = EnvelopeLimits(max_envelope_bytes=600)
    text = json.dumps(envelope(metadata={"note": "é" * 400}), ensure_ascii=False)
    assert len(text) <= 600 < len(text.encode())
    with pytest.raises(EnvelopeError, match="bytes"):
        decode(text, limits)


# -- control characters (issue 12, item 8) ---------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        pytest.param({"team_id": "team\x1b]0;pwned\x07"}, id="team-osc-title"),
        pytest.param({"resource": {"id": "c1\x1b[2J", "type": "capsule"}}, id="resource-clear"),
        pytest.param({"actor": {"type": "user", "name": "al\x9bice"}}, id="actor-c1-csi"),
        pytest.param({"metadata": {"k\rey": "v"}}, id="metadata-key"),
    ],
)
def test_control_characters_in_identifiers_are_refused(field: dict[str, Any]) -> None:
    data = {"event": "capsule.create", "team_id": "team-1", "resource": {"id": "c1", "type": "c"}}
    data.update(field)
    with pytest.raises(EnvelopeError, match="control character"):
        decode(json.dumps(data))


# -- envelopes without id / timestamp (issue 12, item 9) --------------------------------

_BARE = b'{"event":"host.down","team_id":"team-1","resource":{"id":"h1","type":"host"}}'


def test_missing_id_and_timestamp_come_from_the_entry() -> None:
    first = decode(_BARE, entry_id="1700000000123-0")
    again = decode(_BARE, entry_id="1700000000123-0")
    other = decode(_BARE, entry_id="1700000000123-1")
    assert first.id == again.id != other.id
    assert first.timestamp == again.timestamp
    assert first.timestamp_text == "2023-11-14T22:13:20.123Z"
    assert first.id.startswith(str(ULID.from_timestamp(1700000000.123))[:10])


def test_ids_the_producer_sent_are_kept() -> None:
    sent = Event(event="host.down", team_id="t", resource={"id": "h", "type": "host"})
    decoded = decode(sent.to_json(), entry_id="1700000000123-0")
    assert (decoded.id, decoded.timestamp) == (sent.id, sent.timestamp)


def test_without_an_entry_a_missing_id_is_fresh() -> None:
    assert decode(_BARE).id != decode(_BARE).id
