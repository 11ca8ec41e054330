"""One clearly marked test notification through a configured channel."""

from __future__ import annotations

import time

from eventbus.brokers.redis_streams import connect
from eventbus.envelope import Event
from eventbus.keys import Keys
from eventbus.settings import Settings

from .channels.base import ChannelDeps, Message, SendResult
from .channels.registry import build_channel
from .dispatch import add_attempt, new_record
from .outbound import make_http_client
from .store import Committer, Settlement, delivery_id

__all__ = ["TEST_SUBSCRIPTION", "send_test"]

TEST_SUBSCRIPTION = "channel-test"


async def send_test(settings: Settings, name: str) -> SendResult:
    """Send through channel ``name`` and record the attempt like any delivery."""
    spec = settings.channel(name)
    if spec is None:
        raise KeyError(name)
    event = Event(
        event="eventbus.channel_test",
        team_id="eventbus",
        resource={"type": "channel", "id": name},
        metadata={"note": "test notification sent by 'eventbus channels test'"},
    )
    message = Message(
        title=f"[TEST] eventbus test notification for channel {name}",
        body="If you can read this, the channel works. No action is needed.",
        event=event,
        delivery_id=delivery_id(event.id, TEST_SUBSCRIPTION, name),
        subscription=TEST_SUBSCRIPTION,
        test=True,
    )
    timeout = settings.consumer.delivery_timeout
    async with make_http_client(settings.security, timeout=timeout) as http:
        deps = ChannelDeps(http=http, security=settings.security, timeout=timeout)
        channel = build_channel(spec, deps)
        result = await channel.send(message)
    now = time.time()
    record = new_record(event, TEST_SUBSCRIPTION, name, channel.type, created_at=now)
    record.updated_at = now
    add_attempt(record, result, now)
    redis = connect(settings.broker.redis_url.get_secret_value())
    try:
        committer = Committer(
            redis,
            Keys(settings.broker.prefix),
            settings.consumer.group,
            settings.consumer.record_ttl,
        )
        await committer.commit([Settlement(records=[record])], now)
    finally:
        await redis.aclose()
    return result
