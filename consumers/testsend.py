"""One clearly marked test notification through a configured channel."""

from __future__ import annotations

import time

from eventbus.brokers.redis_streams import connect
from eventbus.envelope import Event
from eventbus.keys import Keys
from eventbus.settings import Settings

from .channels.base import Message, SendResult
from .channels.registry import build_channel
from .commit import Committer
from .daemon import make_channel_deps, make_http_client
from .dispatch import Plan
from .records import Attempt, DeliveryRecord, DeliveryStatus, delivery_id

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
    did = delivery_id(event.id, TEST_SUBSCRIPTION, name)
    message = Message(
        title=f"[TEST] eventbus test notification for channel {name}",
        body="If you can read this, the channel works. No action is needed.",
        event=event,
        delivery_id=did,
        subscription=TEST_SUBSCRIPTION,
        test=True,
    )
    async with make_http_client(settings) as http:
        channel = build_channel(spec, make_channel_deps(settings, http))
        result = await channel.send(message)
    now = time.time()
    record = DeliveryRecord(
        id=did,
        event_id=event.id,
        event_type=event.event,
        team_id=event.team_id,
        subscription=TEST_SUBSCRIPTION,
        channel=name,
        channel_type=channel.type,
        status=DeliveryStatus.DELIVERED if result.ok else DeliveryStatus.FAILED,
        attempts=1,
        created_at=now,
        updated_at=now,
        last_status=result.status,
        last_error=result.error,
    )
    record.history = [
        Attempt(
            1,
            now,
            result.latency,
            result.outcome.value,
            result.status,
            result.error,
            result.response_excerpt,
        )
    ]
    redis = connect(settings.broker.redis_url.get_secret_value())
    try:
        committer = Committer(
            redis,
            Keys(settings.broker.prefix),
            settings.consumer.group,
            settings.consumer.record_ttl,
        )
        await committer.commit([Plan(records=[record])], now)
    finally:
        await redis.aclose()
    return result
