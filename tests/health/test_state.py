"""Check results in the Nagios plugin convention, the heartbeat format, the workers' verdicts
(on a real Redis), and the FastAGI probe against our own server and a stranger."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from redis.asyncio import Redis

from ivr import keys
from ivr.db import connect_sentinel
from ivr.health.asterisk import agi_probe
from ivr.health.checks import check_redis, check_worker, check_workers
from ivr.health.heartbeat import Heartbeat
from ivr.health.state import Check, Report, State, run, worst
from ivr.pbx import agi, agiserver
from ivr.sandbox.redisserver import RedisServer
from ivr.sandbox.sentinel import MASTER, SentinelCluster


def test_worst_state_wins_critical_before_warning_before_unknown() -> None:
    assert worst([]) is State.OK
    assert worst([State.OK, State.UNKNOWN]) is State.UNKNOWN
    assert worst([State.UNKNOWN, State.WARNING]) is State.WARNING
    assert worst([State.WARNING, State.CRITICAL, State.UNKNOWN]) is State.CRITICAL
    assert [int(s) for s in State] == [0, 1, 2, 3]


def test_plugin_line_problems_first_one_line_perfdata() -> None:
    report = Report(
        (
            Check("ami", State.OK, "Asterisk 22 up", 0.0123),
            Check("redis", State.CRITICAL, "Redis unreachable:\nrefused | really", 0.5),
            Check("speech", State.WARNING, "slow", 1.0),
        )
    )
    line = report.line()
    assert line == (
        "IVR CRITICAL - redis: Redis unreachable: refused / really; speech: slow; "
        "ami: Asterisk 22 up | 'ami'=0.012s 'redis'=0.500s 'speech'=1.000s"
    )
    assert "\n" not in line and line.count("|") == 1
    data = report.as_dict()
    assert (data["state"], data["code"]) == ("critical", 2)
    assert [c["state"] for c in data["checks"]] == ["ok", "critical", "warning"]
    json.dumps(data)


async def test_a_check_that_hangs_is_critical_one_that_breaks_is_unknown() -> None:
    async def hangs() -> Check:
        await asyncio.Event().wait()
        raise AssertionError

    async def breaks() -> Check:
        raise KeyError("oops")

    async def fine() -> Check:
        return Check("fine", State.OK, "ok")

    report = await run([("hangs", hangs), ("breaks", breaks), ("fine", fine)], timeout=0.2)
    states = {c.name: (c.state, c.summary) for c in report.checks}
    assert states["hangs"] == (State.CRITICAL, "no answer within 0.2 s")
    assert states["breaks"][0] is State.UNKNOWN and "KeyError" in states["breaks"][1]
    assert states["fine"] == (State.OK, "ok")
    assert report.state is State.CRITICAL


def test_heartbeat_round_trip_and_foreign_data() -> None:
    beat = Heartbeat("pbx1", 30, 4, True, 1000.0, period=10.0)
    assert Heartbeat.from_json(beat.to_json()) == beat
    old = json.dumps({"asterisk": "a", "capacity": 2, "in_flight": 0, "ami_up": 1, "seen": 5})
    assert Heartbeat.from_json(old) == Heartbeat("a", 2, 0, True, 5.0, 10.0)
    for bad in ("{not json", "[]", '{"asterisk": "a"}', '{"capacity": "x"}', "null"):
        assert Heartbeat.from_json(bad) is None
    assert not beat.silent(now=1030.0) and beat.silent(now=1030.5)


def beat(seen: float, ami_up: bool = True) -> str:
    return Heartbeat("pbx1", 30, 0, ami_up, seen, period=10.0).to_json()


async def test_workers_verdicts(db: Redis) -> None:
    now = time.time()
    none = await check_workers(db, now)
    assert none.state is State.CRITICAL and "no worker alive" in none.summary

    await db.hset(keys.workers_key, mapping={"w1": beat(now - 5), "junk": "{"})
    assert (await check_workers(db, now)).state is State.OK
    await db.hset(keys.workers_key, mapping={"w2": beat(now - 45)})
    silent = await check_workers(db, now)
    assert silent.state is State.WARNING and "silent: w2 for 45 s" in silent.summary
    await db.hset(keys.workers_key, mapping={"w3": beat(now - 1, ami_up=False)})
    lost = await check_workers(db, now)
    assert lost.state is State.WARNING and "without their AMI link: w3" in lost.summary
    await db.hdel(keys.workers_key, "w1")
    assert (await check_workers(db, now)).state is State.CRITICAL
    # A worker gone for more than a day is forgotten, not reported for ever.
    await db.hset(keys.workers_key, mapping={"w2": beat(now - 90000)})
    assert "w2" not in (await check_workers(db, now)).summary

    lost_one = await check_worker(db, "w3", now)
    assert lost_one.summary == "w3: its AMI link to Asterisk 'pbx1' is down"
    assert (await check_worker(db, "nobody", now)).state is State.CRITICAL
    await db.hset(keys.workers_key, mapping={"w4": beat(now - 2)})
    assert (await check_worker(db, "w4", now)).state is State.OK


async def test_agi_probe_knows_our_server_from_another() -> None:
    async def flow(session: agi.AgiSession) -> None:
        raise AssertionError("the probe must not reach a flow")

    async with agiserver.AgiServer({"ivr-health": flow}, port=0) as server:
        await agi_probe("127.0.0.1", server.port, timeout=2)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    async def talks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    for handler, message in ((silent, "does not speak FastAGI"), (talks, "not as ivr's FastAGI")):
        stranger = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = stranger.sockets[0].getsockname()[1]
        try:
            with pytest.raises(agi.AgiError, match=message):
                await agi_probe("127.0.0.1", port, timeout=0.5)
        finally:
            stranger.close()
            await stranger.wait_closed()
    with pytest.raises(agi.AgiError, match="nothing answers"):
        await agi_probe("127.0.0.1", port, timeout=0.5)


async def test_redis_restarted_is_not_redis_down(redis_server: RedisServer, db: Redis) -> None:
    """The pooled connection from before the restart fails once: the check tries again."""
    assert (await check_redis(db)).state is State.OK
    await db.hset(keys.workers_key, "w1", beat(time.time()))
    redis_server.stop()
    redis_server.start()
    # Both at once, as /api/health runs them: each on a pooled connection from before.
    redis, workers = await asyncio.gather(check_redis(db), check_workers(db))
    assert (redis.state, workers.state) == (State.OK, State.OK), (redis, workers)


async def test_redis_through_sentinel_reports_replicas_and_sentinels(
    sentinel_cluster: SentinelCluster,
) -> None:
    db = connect_sentinel(sentinel_cluster.addresses, MASTER)
    try:
        primary = sentinel_cluster.primary()
        check = await check_redis(db)
        assert check.state is State.OK, check
        assert "1 replica(s) in sync, 3 of 3 Sentinels answer" in check.summary
        assert f"127.0.0.1:{primary.port}" in check.summary
        assert check.details["replicas_online"] == 1
        assert len(check.details["sentinel"]["sentinels"]) == 3

        sentinel_cluster.sentinels[2].stop()
        check = await check_redis(db)
        assert check.state is State.WARNING, check
        assert check.summary.startswith("2 of 3 Sentinels answer"), check.summary

        sentinel_cluster.servers[1].stop()  # the replica
        check = await check_redis(db)
        assert check.state is State.WARNING, check
        assert check.summary.startswith("no replica in sync: a failover now could lose"), check
    finally:
        await db.aclose()
