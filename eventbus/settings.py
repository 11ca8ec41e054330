"""Settings: one pydantic-settings root, nothing else reads the environment.

Sources, strongest first: keyword arguments, ``EVENTBUS_*`` environment
variables (nested with ``__``, e.g. ``EVENTBUS_BROKER__REDIS_URL``), the YAML
file (``--config PATH`` or ``EVENTBUS_CONFIG``), defaults. Loading a YAML file
with line numbers for errors lives in ``eventbus.config``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .breaker import BreakerSettings
from .broker_settings import BrokerSettings, redact_url
from .catalog_settings import AlertSettings, CatalogSettings, TypeDeclaration
from .durations import Duration
from .envelope import EnvelopeLimits, Severity
from .filters import FilterError, Filters, check_where, compile_filters
from .paths import check_path
from .security import SecuritySettings, secret_key_bytes

__all__ = [
    "AlertSettings",
    "ApiToken",
    "BreakerSettings",
    "BrokerSettings",
    "CatalogSettings",
    "ChannelSpec",
    "ConsumerSettings",
    "HttpSettings",
    "LoggingSettings",
    "RateLimitSpec",
    "SecuritySettings",
    "Settings",
    "SubscriptionSpec",
    "TypeDeclaration",
    "redact_url",
    "secret_key_bytes",
]

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Name = Annotated[str, Field(pattern=NAME_RE)]
PATTERN_RE = re.compile(r"^(\*|[a-z0-9_*?]+(\.[a-z0-9_*?]+)*)\Z")  # \Z: no trailing newline

DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConsumerSettings(_Section):
    group: Name = "delivery"
    name: Name | None = Field(None, description="consumer name; default <hostname>-<pid>")
    batch_size: int = Field(100, ge=1, le=10000)
    block: Duration = 2.0
    max_in_flight: int = Field(256, ge=1, le=100000)
    claim_idle: Duration = 60.0
    claim_interval: Duration = 15.0
    max_receives: int = Field(5, ge=1)
    drain_timeout: Duration = 30.0
    delivery_timeout: Duration = 15.0
    dead_consumer_idle: Duration = 86400.0
    trim_interval: Duration = 60.0
    # Acknowledged entries are kept at least this long (SSE Last-Event-ID replay).
    retention_min_age: Duration = 3600.0
    retry_poll: Duration = 1.0
    retry_schedule: list[Duration] = Field(default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE))
    retry_jitter: float = Field(0.2, ge=0, le=0.5)
    retry_after_max: Duration = 86400.0
    record_ttl: Duration = 7 * 86400.0

    def consumer_name(self) -> str:
        return self.name or f"{socket.gethostname()}-{os.getpid()}"


class ApiToken(_Section):
    name: Name
    token: SecretStr
    teams: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    role: Literal["read", "operate"] = Field(
        "read", description="read: look only; operate: also acknowledge, resolve, change"
    )


class HttpSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tokens: list[ApiToken] = Field(default_factory=list)
    heartbeat: Duration = 15.0
    client_buffer: int = Field(1000, ge=1)
    replay_limit: int = Field(1000, ge=0)


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    # "all": an info line per successful delivery, else debug (records are the audit trail)
    deliveries: Literal["unsuccessful", "all"] = "unsuccessful"


class RateLimitSpec(_Section):
    rate: float = Field(gt=0, description="tokens per period")
    per: Duration = 1.0
    burst: int | None = Field(None, ge=1)


class ChannelSpec(BaseModel):
    """One delivery target. ``type`` may be implied by a shoutrrr-style ``url``.

    Type-specific keys are kept as extras and validated by the channel's own
    model (in ``consumers.channels``), so this model allows extra keys; its
    repr never shows them, since they may hold secrets.
    """

    model_config = ConfigDict(extra="allow")

    name: Name
    type: str | None = None
    url: SecretStr | None = None
    enabled: bool = True
    timeout: Duration | None = None
    rate_limit: RateLimitSpec | None = None
    breaker: BreakerSettings | None = None  # fields set here override the ``breaker:`` section

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})

    @property
    def kind(self) -> str:
        """The channel type, from ``type`` or the URL scheme."""
        if self.type:
            return self.type
        if self.url is not None:
            scheme = self.url.get_secret_value().split(":", 1)[0].lower()
            return scheme.split("+", 1)[0]
        return ""

    def __repr_args__(self) -> Any:
        yield "name", self.name
        yield "type", self.kind


class SubscriptionSpec(_Section):
    name: Name
    team: str = Field(min_length=1, description='team id, or "*" for every team')
    events: list[str] = Field(min_length=1)
    outcomes: list[Literal["success", "error", "none"]] | None = None
    channels: list[str] = Field(min_length=1)
    retry: list[Duration] | None = None
    title_template: str | None = None
    body_template: str | None = None
    link_template: str | None = None
    enabled: bool = True
    # Routing (see the README's "Routing"): which matching events go on, and how.
    min_severity: Severity | None = Field(
        None, description="keep events of this severity and above (debug < info < ... critical)"
    )
    severities: list[Severity] | None = Field(
        None, description="keep events of exactly these severities (not with min_severity)"
    )
    where: dict[str, Any] | None = Field(
        None,
        description=(
            "AND of path -> matcher. Paths: event, outcome, severity, team_id, error, "
            "actor.type|id|name, resource.type|id, metadata.<key>. Compiled at load "
            "(eventbus.filters)."
        ),
    )
    cooldown: Duration | None = None
    cooldown_key: list[str] = Field(default_factory=lambda: ["team", "event", "resource"])
    group_by: list[str] | None = None
    group_wait: Duration = 30.0
    group_interval: Duration = 300.0
    digest_max_events: int = Field(50, ge=1, le=1000)
    # Alerts (see the README's "Alerts"): which transitions of an alert notify.
    send_resolved: bool = True
    repeat_interval: Duration | None = Field(None, gt=0)
    notify_on: list[Literal["raise", "resolve", "acknowledge", "repeat", "touch"]] | None = None
    _filters: Filters | None = PrivateAttr(None)

    @property
    def filters(self) -> Filters | None:
        """The compiled severity and ``where`` filters; ``None`` when it filters nothing."""
        # Read from pydantic's store directly: ``self._filters`` goes through a
        # failed attribute lookup first, ten times slower.
        private = self.__pydantic_private__
        return private.get("_filters") if private else None

    @property
    def alert_notify_on(self) -> frozenset[str]:
        """``notify_on``, or its default: raise and resolve (and repeat with an interval)."""
        if self.notify_on is not None:
            return frozenset(self.notify_on)
        return _NOTIFY_REPEAT if self.repeat_interval else _NOTIFY_DEFAULT

    @field_validator("where")
    @classmethod
    def _check_where(cls, where: dict[str, Any] | None) -> dict[str, Any] | None:
        # Here too, not only when compiling below: a where problem is then
        # reported even when another key of the subscription is wrong.
        try:
            check_where(where or {})
        except FilterError as exc:
            raise _filter_errors(cls.__name__, exc, within="where") from None
        return where

    @model_validator(mode="after")
    def _compile_filters(self) -> SubscriptionSpec:
        try:
            self._filters = compile_filters(self.min_severity, self.severities, self.where)
        except FilterError as exc:
            raise _filter_errors(type(self).__name__, exc) from None
        return self

    @field_validator("cooldown_key", "group_by")
    @classmethod
    def _check_key_paths(cls, paths: list[str] | None) -> list[str] | None:
        for path in paths or ():
            check_path(path)
        return paths

    @field_validator("events")
    @classmethod
    def _check_patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not PATTERN_RE.match(pattern):
                raise ValueError(
                    f"event pattern {pattern!r} is not valid: use dotted lowercase names "
                    "with * or ? as wildcards, e.g. 'capsule.*' or 'host.down'"
                )
        return patterns


_NOTIFY_DEFAULT = frozenset({"raise", "resolve"})
_NOTIFY_REPEAT = _NOTIFY_DEFAULT | {"repeat"}


def _filter_errors(title: str, exc: FilterError, within: str = "") -> ValidationError:
    """``exc`` as a ValidationError keeping each problem's location (``where.error.regex``).

    pydantic prefixes those locations with the subscription's own, so a
    configuration error names the line of the offending key. ``within``: the
    field being validated, which pydantic adds itself.
    """
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError("filter", "{reason}", {"reason": problem.message}),
                loc=problem.loc[1:] if within and problem.loc[:1] == (within,) else problem.loc,
                input=problem.value,
            )
            for problem in exc.problems
        ],
    )


class Settings(BaseSettings):
    """The root of all eventbus settings."""

    model_config = SettingsConfigDict(
        env_prefix="EVENTBUS_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    envelope: EnvelopeLimits = Field(default_factory=EnvelopeLimits)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    channels: list[ChannelSpec] = Field(default_factory=list)
    subscriptions: list[SubscriptionSpec] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # YAML is passed in as init data by eventbus.config (it must be merged
        # below the environment), so only these two sources are used.
        return env_settings, init_settings

    def channel(self, name: str) -> ChannelSpec | None:
        return next((c for c in self.channels if c.name == name), None)


def env_config_path(environ: Mapping[str, str] | None = None) -> str | None:
    """The YAML path from ``EVENTBUS_CONFIG``, if set."""
    env = os.environ if environ is None else environ
    return env.get("EVENTBUS_CONFIG") or None


def read_environ() -> dict[str, str]:
    """A copy of the process environment (for ``${NAME}`` in YAML)."""
    return dict(os.environ)
