"""aio-pika's errors as the eventbus tree, translated where they enter (RabbitMQ backend).

Each message names the operation, says what would fix it when something
can, and never carries the URL's password (aio-pika's own texts are scrubbed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final
from urllib.parse import unquote

from aio_pika import exceptions as amqp_errors
from aiormq.exceptions import ChannelAccessRefused

from ..errors import BrokerError, BrokerUnavailable
from ..settings import redact_url
from .rabbitmq_topology import Topology

__all__ = ["UNAVAILABLE", "Translator"]

UNAVAILABLE: Final = (
    amqp_errors.AMQPConnectionError,
    amqp_errors.ChannelInvalidStateError,
    ConnectionError,
    OSError,
)


class Translator:
    """``with translated("publish"): ...`` raises ``BrokerError`` for what aio-pika raised."""

    def __init__(self, url: str, topology: Topology, timeout: float) -> None:
        self.url_redacted = redact_url(url)
        self._password = url.partition("://")[2].rpartition("@")[0].partition(":")[2]
        self.topology = topology
        self.timeout = timeout

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        """aio-pika's errors as ``BrokerError``; the password never in the text."""
        try:
            yield
        except TimeoutError as exc:
            raise BrokerError(
                f"{what}: RabbitMQ at {self.url_redacted} did not answer within "
                f"{self.timeout:g}s (broker.socket_timeout)"
            ) from exc
        except amqp_errors.PublishError as exc:
            raise BrokerError(
                f"{what}: RabbitMQ returned the message as unroutable: no queue of "
                f"exchange {self.topology.events!r} takes it; start a worker or run "
                "'eventbus broker setup' to declare the group queue"
            ) from exc
        except amqp_errors.DeliveryError as exc:
            raise BrokerError(f"{what}: RabbitMQ refused the message (nack)") from exc
        except amqp_errors.ChannelPreconditionFailed as exc:
            raise BrokerError(
                f"{what}: {self.scrub(exc)}; a queue or exchange of prefix "
                f"{self.topology.prefix!r} exists with other arguments (e.g. another "
                "consumer.max_receives): delete it or match its arguments"
            ) from exc
        except ChannelAccessRefused as exc:
            raise BrokerError(
                f"{what}: {self.scrub(exc)}; this user may not configure the vhost: "
                "run 'eventbus broker setup' as a user who may"
            ) from exc
        except UNAVAILABLE as exc:
            raise BrokerUnavailable(
                f"{what}: RabbitMQ at {self.url_redacted} is unreachable "
                f"({type(exc).__name__}: {self.scrub(exc)})"
            ) from exc
        except amqp_errors.AMQPError as exc:
            raise BrokerError(f"{what}: RabbitMQ error: {self.scrub(exc)}") from exc

    def scrub(self, exc: BaseException) -> str:
        text = str(exc)
        for shown in {self._password, unquote(self._password)} - {""}:
            text = text.replace(shown, "***")
        return text
