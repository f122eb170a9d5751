"""A director who calls while Redis answers slowly (a failover: up to 20 s) hears "one moment,
please" instead of silence, and what they asked for still happens — even when they hang up
during the wait after pressing 1. Real SIP phone (SIPp), the sandbox Asterisk, a real
redis-server behind a proxy that delays every reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from ivr.campaign import store
from ivr.config import Config
from ivr.db import connect
from ivr.keys import audit_key
from ivr.lines.call import HOLD_AFTER
from ivr.pbx.ami import AmiLink
from ivr.sandbox.redisserver import RedisServer
from tests.lines.linephone import PIN, Phone, launch, serve_lines
from tests.phonerobot import On
from tests.sipp import Hangup
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration

#: Each Redis reply this late: one read is already longer than HOLD_AFTER.
REDIS_DELAY = HOLD_AFTER + 0.3


@pytest.fixture
async def slow_redis_phone(
    sandbox_config: Config, redis_server: RedisServer, db: Redis, ami: AmiLink
) -> AsyncIterator[tuple[Phone, TcpProxy]]:
    """The lines reaching Redis through a proxy (`db`, the test's own client, goes straight);
    the proxy's delay is set by the test once the roster and PIN are in."""
    proxy = TcpProxy("127.0.0.1", redis_server.port)
    await proxy.start()
    slow_db = connect(f"redis://127.0.0.1:{proxy.port}/0")
    try:
        async with serve_lines(sandbox_config, redis_server.url, slow_db, ami) as served:
            served.db = db
            await served.lines.warm_up(("fr",))
            yield served, proxy
    finally:
        await slow_db.aclose()
        await proxy.close()


async def _ready(phone: Phone, proxy: TcpProxy) -> None:
    await phone.roster()
    await phone.lines.context.pins.set("d0", PIN)
    proxy.delay = REDIS_DELAY


async def test_a_slow_redis_is_met_with_one_moment_please(
    slow_redis_phone: tuple[Phone, TcpProxy],
) -> None:
    phone, proxy = slow_redis_phone
    await _ready(phone, proxy)
    async with phone.hub.call(
        "trigger", "0611223340", [*launch("1"), On("launched", Hangup())]
    ) as robot:
        pass
    await robot.finished()
    assert robot.seen == ["pin", "scenario", "confirm", "launched"]
    # At least: the lockout check before the PIN, the launch after "1".
    assert robot.holds >= 2, robot.holds
    assert len(await store.active(phone.db)) == 1


async def test_hanging_up_while_held_after_pressing_1_still_launches(
    slow_redis_phone: tuple[Phone, TcpProxy],
) -> None:
    phone, proxy = slow_redis_phone
    await _ready(phone, proxy)
    script = [*launch("1"), On("hold", Hangup())]
    newest = await phone.db.xrevrange(audit_key, count=1)
    async with phone.hub.call("trigger", "0611223341", script) as robot:
        pass
    await robot.finished()
    assert robot.seen == ["pin", "scenario", "confirm"]
    # The launch goes on after the hang-up; its audit entry is its last write.
    started = await _audited(phone.db, newest[0][0] if newest else "0-0", "campaign.start")
    assert started["who"] == "phone:d0"
    assert await store.active(phone.db) == [started["target"]]


async def _audited(db: Redis, after: str, action: str) -> dict[str, str]:
    """The next audit entry of `action` after entry id `after`, as it is written."""
    async with asyncio.timeout(60):
        while True:
            for _, got in await db.xread({audit_key: after}, block=1000) or []:
                for entry, fields in got:
                    after = entry
                    if fields["action"] == action:
                        return fields
