"""Catalog rules: durable vs transient, strict mode, extension from configuration."""

from __future__ import annotations

import pytest

from eventbus.catalog import DEFAULT_TYPES, Catalog, Kind
from eventbus.config import load_settings
from eventbus.errors import CatalogError, ConfigError, EventBusError

DURABLE = [
    "capsule.create",
    "capsule.pause",
    "capsule.resume",
    "capsule.destroy",
    "template.snapshot.create",
    "template.snapshot.delete",
    "host.up",
    "host.down",
]


def test_defaults_from_the_issue() -> None:
    catalog = Catalog()
    assert dict(DEFAULT_TYPES) == {
        **dict.fromkeys(DURABLE, Kind.DURABLE),
        "capsule.state.changed": Kind.TRANSIENT,
        # published by the daemon itself when it disables a channel
        "eventbus.channel.disabled": Kind.DURABLE,
        # alert transitions on the live feed (consumers.routing.alerts)
        **dict.fromkeys(
            [f"eventbus.alert.{name}" for name in ("raised", "touched", "acknowledged")]
            + ["eventbus.alert.resolved", "eventbus.alert.repeat"],
            Kind.TRANSIENT,
        ),
    }
    assert catalog.types == DEFAULT_TYPES
    assert catalog.strict is False
    for name in DURABLE:
        assert catalog.is_subscribable(name)
        catalog.check_durable(name)
        catalog.check_transient(name)  # durable types may also be mirrored live
    assert not catalog.is_subscribable("capsule.state.changed")


def test_transient_type_published_durably_is_an_error() -> None:
    with pytest.raises(CatalogError) as info:
        Catalog().check_durable("capsule.state.changed")
    message = str(info.value)
    assert "'capsule.state.changed' is a transient event type" in message
    assert "publish_transient()" in message
    assert isinstance(info.value, EventBusError)
    assert isinstance(info.value, ValueError)
    Catalog().check_transient("capsule.state.changed")


def test_durable_only_type_published_transiently_is_an_error() -> None:
    catalog = Catalog({"billing.invoice.paid": "durable_only"})
    catalog.check_durable("billing.invoice.paid")
    assert catalog.is_subscribable("billing.invoice.paid")
    with pytest.raises(CatalogError, match=r"'billing.invoice.paid' is declared durable_only"):
        catalog.check_transient("billing.invoice.paid")


def test_unknown_types_pass_when_not_strict() -> None:
    catalog = Catalog()
    catalog.check_durable("billing.invoice.paid")
    catalog.check_transient("billing.invoice.paid")
    assert catalog.is_subscribable("billing.invoice.paid")
    assert catalog.kind("billing.invoice.paid") is None


def test_strict_mode_rejects_unknown_types_with_a_clear_message() -> None:
    catalog = Catalog(strict=True)
    for check in (catalog.check_durable, catalog.check_transient):
        with pytest.raises(CatalogError) as info:
            check("capsule.craete")
        message = str(info.value)
        assert "'capsule.craete' is not in the catalog" in message
        assert "catalog.strict" in message
        assert "catalog.types" in message  # says how to fix it
    assert not catalog.is_subscribable("capsule.craete")
    catalog.check_durable("capsule.create")  # declared types still pass


def test_extension_and_override_in_code() -> None:
    catalog = Catalog({"billing.invoice.paid": Kind.DURABLE, "host.up": "transient"})
    assert catalog.kind("billing.invoice.paid") is Kind.DURABLE
    assert catalog.kind("host.up") is Kind.TRANSIENT
    assert "billing.invoice.paid" in catalog
    assert "capsule.create" in catalog  # defaults stay
    assert "strict=False" in repr(catalog)


@pytest.mark.parametrize(
    ("types", "error"),
    [
        pytest.param({"Billing.Paid": "durable"}, "dotted lowercase", id="bad-name"),
        pytest.param({"billing.paid": "sometimes"}, "sometimes", id="bad-kind"),
    ],
)
def test_bad_declarations_in_code(types: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Catalog(types)


def test_extension_from_configuration(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "eventbus.yaml"
    path.write_text(
        "catalog:\n"
        "  strict: true\n"
        "  types:\n"
        "    billing.invoice.paid: durable\n"
        "    capsule.metrics: transient\n"
        "    audit.login: durable_only\n"
    )
    catalog = load_settings(path, environ={}).catalog.build()
    assert catalog.strict is True
    assert catalog.kind("billing.invoice.paid") is Kind.DURABLE
    assert catalog.kind("capsule.metrics") is Kind.TRANSIENT
    assert catalog.kind("audit.login") is Kind.DURABLE_ONLY
    assert catalog.kind("capsule.create") is Kind.DURABLE
    catalog.check_durable("billing.invoice.paid")
    with pytest.raises(CatalogError):
        catalog.check_durable("capsule.metrics")
    with pytest.raises(CatalogError):
        catalog.check_transient("audit.login")
    with pytest.raises(CatalogError):
        catalog.check_durable("not.declared")


@pytest.mark.parametrize(
    ("yaml_types", "needle"),
    [
        pytest.param('    "Billing Paid": durable\n', "Billing Paid", id="bad-name"),
        pytest.param("    billing.paid: sometimes\n", "catalog.types.billing.paid", id="bad-kind"),
    ],
)
def test_bad_declarations_in_configuration_are_config_problems(
    tmp_path,  # type: ignore[no-untyped-def]
    yaml_types: str,
    needle: str,
) -> None:
    path = tmp_path / "eventbus.yaml"
    path.write_text("catalog:\n  types:\n" + yaml_types)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    [problem] = info.value.problems
    assert problem.where in {f"{path}:2", f"{path}:3"}
    assert needle in problem.message
