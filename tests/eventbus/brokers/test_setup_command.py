"""``eventbus broker setup`` declares the topology, idempotently, on either broker."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest
import redis.asyncio as aioredis
from click.testing import Result

from eventbus.brokers.rabbitmq import Topology
from eventbus.keys import Keys
from tests.eventbus.cli_support import no_secrets, run
from tests.test_extras import BASE_ONLY, RABBITMQ, python

from .conftest import delete_topology

pytestmark = pytest.mark.integration
GROUPS = ("--group", "delivery", "--group", "audit")


async def in_thread(*args: str, env: dict[str, str]) -> Result:
    """The command runs its own event loop (asyncio.run), so not on the test's."""
    return await asyncio.to_thread(run, *args, env=env)


async def test_setup_declares_the_rabbitmq_topology_twice_alike(amqp_url: str, prefix: str) -> None:
    env = {
        "EVENTBUS_BROKER__KIND": "rabbitmq",
        "EVENTBUS_BROKER__AMQP_URL": amqp_url,
        "EVENTBUS_BROKER__PREFIX": prefix,
        "EVENTBUS_CONSUMER__MAX_RECEIVES": "4",
    }
    try:
        for _ in range(2):
            done = await in_thread(
                "broker", "setup", "--group", "delivery", "--group", "audit", env=env
            )
            assert done.exit_code == 0, done.output
        assert f"quorum queue {prefix}.audit (x-delivery-limit 4)" in done.output
        names = Topology(prefix, 4)
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            for exchange in (names.events, names.live, names.dlq):
                await channel.get_exchange(exchange, ensure=True)
            for group in ("delivery", "audit"):
                await channel.declare_queue(
                    names.queue(group), durable=True, arguments=names.group_arguments()
                )
            await channel.declare_queue(names.dlq, passive=True)
    finally:
        await delete_topology(amqp_url, prefix, ["delivery", "audit"])


async def test_setup_creates_the_redis_consumer_groups(
    redis: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    env = {"EVENTBUS_BROKER__REDIS_URL": redis_url, "EVENTBUS_BROKER__PREFIX": prefix}
    done = await in_thread("broker", "setup", *GROUPS, env=env)
    assert done.exit_code == 0, done.output
    groups = await redis.xinfo_groups(Keys(prefix).events)
    assert sorted(group["name"] for group in groups) == [b"audit", b"delivery"]
    assert (await in_thread("broker", "setup", env=env)).exit_code == 0


def test_an_unreachable_rabbitmq_exits_3_without_the_password(prefix: str) -> None:
    env = {
        "EVENTBUS_BROKER__KIND": "rabbitmq",
        "EVENTBUS_BROKER__AMQP_URL": "amqp://ops:hunter2pw@127.0.0.1:1/",
        "EVENTBUS_BROKER__PREFIX": prefix,
        "EVENTBUS_BROKER__SOCKET_TIMEOUT": "2",
    }
    done = run("broker", "setup", env=env)
    assert done.exit_code == 3
    assert "broker.amqp_url" in done.output and "ops:***@" in done.output
    no_secrets(done.output)


def test_setup_on_rabbitmq_without_the_extra_says_which_install_fixes_it() -> None:
    code = (
        "import os\n"
        "os.environ['EVENTBUS_BROKER__KIND'] = 'rabbitmq'\n"
        "from eventbus.cli import main\n"
        "main(['broker', 'setup'])"
    )
    done = python(RABBITMQ, code)
    assert done.returncode == 2, done.stderr
    assert "pip install 'eventbus[rabbitmq]'" in done.stderr


async def test_the_base_install_sets_up_redis_without_aio_pika(
    redis: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    code = (
        "import os, sys\n"
        f"os.environ.update(EVENTBUS_BROKER__REDIS_URL={redis_url!r}, "
        f"EVENTBUS_BROKER__PREFIX={prefix!r})\n"
        "from eventbus.cli import main\n"
        "try:\n"
        "    main(['broker', 'setup'])\n"
        "finally:\n"
        "    assert 'aio_pika' not in sys.modules\n"
    )
    done = await asyncio.to_thread(python, BASE_ONLY, code)
    assert done.returncode == 0, done.stderr
    assert f"stream {{{prefix}}}:events, group delivery" in done.stdout
    assert len(await redis.xinfo_groups(Keys(prefix).events)) == 1
