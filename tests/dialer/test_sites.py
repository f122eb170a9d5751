"""A site lost: the calls its Asterisk had are ended as lost, then placed again from here."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from ivr import keys
from ivr.campaign import store
from ivr.campaign.scheduler import Scheduler
from ivr.dialer.alerter import Alerter
from ivr.dialer.worker import DialerWorker, WorkerSettings
from ivr.health.heartbeat import Heartbeat
from tests.campaigntools import (
    attempts_by_person,
    events,
    person,
    states,
    wait_done,
    wait_events,
)
from tests.dialer.test_faults import SPEC

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def beat(asterisk: str, seen: float) -> str:
    return Heartbeat(asterisk, 10, 1, True, seen, period=1.0).to_json()


async def test_calls_of_a_lost_asterisk_are_placed_again_from_a_live_one(
    alerter: Alerter, db: aioredis.Redis
) -> None:
    # Three people who press 1. Site A's worker claimed the first, then A went silent (its
    # heartbeat stopped); site B's Asterisk still has a live worker (its own, below).
    people = [person(f"s{i}", "nurse", f"1{i}1000{i:02d}") for i in range(3)]
    cid = await store.create(db, SPEC, people)
    lost = await Scheduler(db).claim(
        cid, int(time.time() * 1000), lease_ms=500, worker="site-a-0", asterisk="site-a"
    )
    assert lost is not None and lost.pid == "s0"
    await db.hset(keys.workers_key, "site-a-0", beat("site-a", time.time() - 3600))

    settings = WorkerSettings(name="site-b-0", capacity=5, lease=1.5, orphan_after=1.0)
    worker = DialerWorker(alerter, db, settings)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await wait_done(db, cid, timeout=90)
    finally:
        stop.set()
        await running

    tries = await attempts_by_person(db, cid)
    assert tries["s0"] == ["failed", "available"], tries
    assert tries["s1"] == tries["s2"] == ["available"], tries
    final = await states(db, cid)
    assert {pid: s["o"] for pid, s in final.items()} == dict.fromkeys(
        ("s0", "s1", "s2"), "available"
    )
    details = [e["detail"] for e in await events(db, cid) if e.get("pid") == "s0" and "detail" in e]
    assert details[0] == "lost with Asterisk site-a: no worker dials through it any more"


async def test_calls_of_an_asterisk_with_a_live_worker_are_left_to_it(
    alerter: Alerter, db: aioredis.Redis
) -> None:
    """Site A's Asterisk still has a live worker: its call is its business, however long."""
    people = [person(f"t{i}", "nurse", f"1{i}1000{i:02d}") for i in range(2)]
    cid = await store.create(db, SPEC, people)
    await Scheduler(db).claim(
        cid, int(time.time() * 1000), lease_ms=500, worker="site-a-1", asterisk="site-a"
    )
    # Its worker is alive (a heartbeat from the future stays fresh for the whole test).
    await db.hset(keys.workers_key, "site-a-1", beat("site-a", time.time() + 3600))
    settings = WorkerSettings(name="site-b-1", capacity=5, lease=1.5, orphan_after=1.0)
    worker = DialerWorker(alerter, db, settings)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await wait_events(db, cid, "final", 1, timeout=60)  # t1 answered
        await upkeep_rounds(db, "site-b-1", 4)  # B looked for lost calls 3 times at least
    finally:
        stop.set()
        await running
    tries = await attempts_by_person(db, cid)
    assert "t0" not in tries and tries["t1"] == ["available"], tries
    held = (await states(db, cid))["t0"]
    assert (held["s"], held["w"], held["a"]) == ("c", "site-a-1", "site-a")


async def upkeep_rounds(db: aioredis.Redis, worker: str, rounds: int) -> None:
    """Until `worker` has written `rounds` more heartbeats (one per round of its upkeep, which
    then renews leases and adopts or ends calls left by others)."""

    async def loop() -> None:
        seen, last = 0, await db.hget(keys.workers_key, worker)
        while seen < rounds:
            now = await db.hget(keys.workers_key, worker)
            if now != last:
                seen, last = seen + 1, now
            await asyncio.sleep(0.05)  # polling: a heartbeat is a hash field, not an event

    await asyncio.wait_for(loop(), 30)
