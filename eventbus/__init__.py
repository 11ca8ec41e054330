"""eventbus core: envelope, catalog, settings, errors, key names, brokers."""

from .catalog import Catalog, Kind
from .envelope import Actor, ActorType, EnvelopeLimits, Event, Outcome, Resource, decode, encode
from .errors import (
    BrokerError,
    BrokerUnavailable,
    CatalogError,
    ChannelConfigError,
    ConfigError,
    ConfigProblem,
    DeliveryError,
    EnvelopeError,
    EventBusError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from .keys import Keys
from .settings import Settings

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorType",
    "BrokerError",
    "BrokerUnavailable",
    "Catalog",
    "CatalogError",
    "ChannelConfigError",
    "ConfigError",
    "ConfigProblem",
    "DeliveryError",
    "EnvelopeError",
    "EnvelopeLimits",
    "Event",
    "EventBusError",
    "Keys",
    "Kind",
    "Outcome",
    "PermanentDeliveryError",
    "Resource",
    "RetryableDeliveryError",
    "Settings",
    "__version__",
    "decode",
    "encode",
]
