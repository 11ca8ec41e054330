"""``console``: writes each notification to the log. For first runs and demos."""

from __future__ import annotations

import structlog

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from .base import ChannelDeps, Message, OutcomeClass, SendResult

__all__ = ["ConsoleChannel", "create"]

log = structlog.get_logger("eventbus.console")


class ConsoleChannel:
    type = "console"

    def __init__(self, name: str) -> None:
        self.name = name

    def describe(self) -> str:
        return "log output"

    async def send(self, message: Message) -> SendResult:
        log.info(
            "notification",
            channel=self.name,
            title=message.title,
            body=message.body,
            delivery_id=message.delivery_id,
        )
        return SendResult(OutcomeClass.DELIVERED)


def create(spec: ChannelSpec, deps: ChannelDeps) -> ConsoleChannel:
    if spec.options:
        raise ChannelConfigError(
            f"unknown option(s) {', '.join(sorted(spec.options))} for type console"
        )
    return ConsoleChannel(spec.name)
