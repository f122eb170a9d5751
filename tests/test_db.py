"""ivr.db: one builder for every Redis client; writes acknowledged by a replica, degrading once."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio as aioredis

from ivr import db as ivrdb
from ivr.config import load_config
from ivr.db import Replication, client_for, describe, follows_sentinel


async def test_one_server_unless_sentinels_are_set() -> None:
    one = load_config({"IVR_REDIS_URL": "redis://:pw@db:6380/2"}, require_ami_credentials=False)
    through = load_config(
        {"IVR_REDIS_URL": "redis://:pw@/3", "IVR_REDIS_SENTINELS": "s1:26379,s2:26379"},
        require_ami_credentials=False,
    )
    plain, followed = client_for(one), client_for(through)
    try:
        assert not follows_sentinel(plain) and follows_sentinel(followed)
        kwargs = followed.connection_pool.connection_kwargs
        assert (kwargs["db"], kwargs["password"]) == (3, "pw")
        assert describe(through) == "Sentinel master 'ivr' via s1:26379,s2:26379"
        assert "pw" not in describe(one)
        assert not Replication(plain).enabled and Replication(followed).enabled
    finally:
        await plain.aclose()
        await followed.aclose()


async def test_no_replica_degrades_once_then_writes_stop_waiting(
    db: aioredis.Redis, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server without replica: the first writes wait WAIT's timeout and get no
    acknowledgement; the warning is said once for all of them; later writes do not wait."""
    monkeypatch.setattr(ivrdb, "WAIT_TIMEOUT_MS", 200)
    replication = Replication(db, wait=True)

    async def write(conn: aioredis.Redis) -> int:
        return int(await conn.incr("n"))

    with caplog.at_level(logging.WARNING, logger="ivr.db"):
        first = await asyncio.gather(*(replication.replicated(write) for _ in range(20)))
        assert sorted(n for n, _ in first) == list(range(1, 21))
        assert not any(safe for _, safe in first)
        assert replication.degraded
        loop = asyncio.get_running_loop()
        started = loop.time()
        later = [await replication.replicated(write) for _ in range(50)]
        assert loop.time() - started < 0.2 * 5, "degraded writes do not wait for WAIT"
    assert [n for n, _ in later] == list(range(21, 71))
    said = [r.getMessage() for r in caplog.records if "no replica acknowledged" in r.getMessage()]
    assert len(said) == 1, said
    assert (replication.acked, replication.unacked) == (0, 70)
