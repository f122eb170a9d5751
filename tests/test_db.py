"""ivr.db: one builder for every Redis client; writes acknowledged by a replica, degrading once."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
import redis.asyncio as aioredis

from ivr import db as ivrdb
from ivr import replication as ivrrepl
from ivr.cli.main import main
from ivr.config import load_config
from ivr.db import client_for, connect_sentinel, describe, follows_sentinel
from ivr.replication import Replication
from ivr.sandbox.redisserver import free_port
from ivr.sandbox.sentinel import MASTER, SentinelCluster


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
    monkeypatch.setattr(ivrrepl, "WAIT_TIMEOUT_MS", 200)
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


async def test_no_new_claims_while_a_majority_of_sentinels_cannot_vouch_for_the_primary(
    sentinel_cluster: SentinelCluster,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Split brain: writes no replica acknowledges, and most Sentinels out of reach, is what a
    site cut off with a stale primary sees. Claiming stops; it resumes when they are back."""
    monkeypatch.setattr(ivrrepl, "CONFIRM_SECONDS", 0.0)
    monkeypatch.setattr(ivrrepl, "WAIT_TIMEOUT_MS", 200)
    client = connect_sentinel(sentinel_cluster.addresses, MASTER)
    replication = Replication(client)

    async def write(conn: aioredis.Redis) -> int:
        return int(await conn.incr("n"))

    try:
        assert await replication.replicated(write) == (1, True)
        assert await replication.may_claim()
        sentinel_cluster.servers[1].stop()  # the replica
        assert await replication.replicated(write) == (2, False)
        assert replication.degraded
        assert await replication.may_claim(), "every Sentinel names this primary: go on"
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ivr.db"):
            for sentinel in sentinel_cluster.sentinels[1:]:
                sentinel.stop()
            assert not await replication.may_claim(), "1 Sentinel of 3: perhaps cut off"
            assert not await replication.may_claim()
            for sentinel in sentinel_cluster.sentinels[1:]:
                await asyncio.to_thread(sentinel.start)
            assert await replication.may_claim()
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 2 and "cut off" in said[0] and "claiming again" in said[1], said
    finally:
        await client.aclose()


def test_a_command_without_sentinels_gives_up_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nobody answers on IVR_REDIS_SENTINELS: exit 6 after FAILOVER_SECONDS, one line naming
    the Sentinels and the key, not redis-py's list of client reprs."""
    for key in [k for k in os.environ if k.startswith("IVR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(ivrdb, "FAILOVER_SECONDS", 0.5)
    ports = free_port(), free_port()
    monkeypatch.setenv("IVR_REDIS_SENTINELS", f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}")
    assert main(["token", "list"]) == 6
    out, err = capsys.readouterr()
    where = f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"
    assert err == (
        f"ivr: error: Redis (Sentinels {where}): no Sentinel of {where} names a primary 'ivr' "
        "(unreachable, a failover under way, or IVR_REDIS_SENTINEL_MASTER not the name they "
        "monitor) (IVR_REDIS_SENTINELS)\n"
    )
    assert out == ""
