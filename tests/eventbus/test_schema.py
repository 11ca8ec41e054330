"""The envelope's JSON Schema: committed, current, and it agrees with the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eventbus.envelope import Event
from eventbus.schema import envelope_schema, main

ROOT = Path(__file__).resolve().parents[2]


def test_committed_envelope_schema_is_current() -> None:
    committed = json.loads((ROOT / "config" / "envelope.schema.json").read_text())
    assert committed == envelope_schema(), (
        "config/envelope.schema.json is stale: run "
        "python -m eventbus.schema envelope > config/envelope.schema.json"
    )


def test_severity_is_described_with_its_order_and_default() -> None:
    schema = envelope_schema()
    assert schema["$defs"]["Severity"]["enum"] == ["debug", "info", "warning", "error", "critical"]
    described = schema["properties"]["severity"]["description"]
    assert "debug < info < warning < error < critical" in described
    assert "'error' if its outcome is 'error', else 'info'" in described


def test_unknown_schema_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match=r"python -m eventbus.schema \[config\|envelope\]"):
        main(["envelopes"])
    main(["envelope"])
    assert json.loads(capsys.readouterr().out)["title"] == "eventbus event envelope"


HOST_DOWN: dict[str, Any] = {
    "event": "host.down",
    "team_id": "ops",
    "resource": {"type": "host", "id": "db1"},
}


@pytest.mark.parametrize(
    ("envelope", "valid"),
    [
        pytest.param({**HOST_DOWN, "severity": "critical"}, True, id="severity"),
        pytest.param(HOST_DOWN, True, id="no-severity"),
        pytest.param({**HOST_DOWN, "severity": "urgent"}, False, id="unknown-severity"),
        pytest.param({**HOST_DOWN, "severity": "CRITICAL"}, False, id="upper-case"),
        pytest.param({**HOST_DOWN, "event": "HostDown"}, False, id="bad-type"),
        pytest.param({**HOST_DOWN, "colour": "red"}, False, id="unknown-field"),
    ],
)
def test_schema_and_model_agree(envelope: dict[str, Any], valid: bool) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(envelope_schema())
    assert validator.is_valid(envelope) is valid
    try:
        Event.model_validate(envelope)
    except ValueError:
        accepted = False
    else:
        accepted = True
    assert accepted is valid
    if valid:  # what eventbus itself writes validates too
        assert validator.is_valid(json.loads(Event.model_validate(envelope).to_json()))
