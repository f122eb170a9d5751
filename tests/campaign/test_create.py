"""Creating a campaign when the reply to one of its writes is lost (a failover, a link reset):
the client sends that write again — through Sentinel, `DeadlineRetry` does — and the second
run must change nothing: no id skipped, no second `started` event, and nobody a worker already
called put back in the queue. Real redis-server, a TCP proxy that loses the reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from ivr.campaign import store
from ivr.campaign.scheduler import TIERS, Scheduler
from ivr.campaign.spec import CampaignSpec
from ivr.db import DeadlineRetry, connect
from ivr.keys import campaign_key
from ivr.sandbox.redisserver import RedisServer
from tests.campaigntools import events, person, states
from tests.tcpproxy import TcpProxy

PEOPLE = [person(f"p{i:04d}", "nurse", f"06{i:08d}") for i in range(300)]
SPEC = CampaignSpec(messages={"fr": "x"}, quotas={"nurse": 200})


@pytest.fixture
async def proxy(redis_server: RedisServer) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", redis_server.port)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def lossy(proxy: TcpProxy) -> AsyncIterator[Redis]:
    """A client through the proxy that retries as the Sentinel client does."""
    client = connect(f"redis://127.0.0.1:{proxy.port}")
    client.set_retry(DeadlineRetry(10.0))
    yield client
    await client.aclose()


async def test_the_id_is_taken_once(proxy: TcpProxy, lossy: Redis, db: Redis) -> None:
    release = proxy.lose_reply_to(b"ivr:campaigns:creating:")
    creating = asyncio.create_task(store.create(lossy, SPEC, PEOPLE))
    await proxy.request_passed.wait()
    release.set()
    assert await creating == "1"
    assert proxy.connections == 2, "the reply was lost and the id asked again"
    assert await store.new_id(db) == "2", "no id skipped"


@pytest.mark.parametrize(
    "marker",
    [b"*1\r\n$4\r\nEXEC\r\n", b"p0270"],
    ids=["the campaign and its first people", "a later batch of people"],
)
async def test_nobody_called_is_queued_again(
    proxy: TcpProxy, lossy: Redis, db: Redis, marker: bytes
) -> None:
    release = proxy.lose_reply_to(marker)
    creating = asyncio.create_task(store.create(lossy, SPEC, PEOPLE))
    await proxy.request_passed.wait()
    # The write went through: the workers call whoever is queued while its reply is lost.
    [cid] = await store.active(db)
    scheduler, called = Scheduler(db), set()
    while claim := await scheduler.claim(
        cid, store.now_ms() + 1000, lease_ms=60_000, worker="w", asterisk="a"
    ):
        called.add(claim.pid)
    assert len(called) >= 250
    release.set()
    assert await creating == cid
    assert proxy.connections == 2, "the reply was lost and the write sent again"
    now = await states(db, cid)
    assert len(now) == len(PEOPLE)
    assert {pid for pid in called if now[pid]["s"] != "c"} == set(), "still being called"
    for tier in TIERS:
        queued = set(await db.zrange(campaign_key(cid, tier), 0, -1))
        assert not queued & called, "called and queued again"
    assert [e["type"] for e in await events(db, cid)].count("started") == 1
    counts = await db.hgetall(campaign_key(cid, "counts"))
    assert counts == {"open": "300", "total": "300", "flight:nurse": str(len(called))}
    assert await db.hget(campaign_key(cid), "writing") is None
