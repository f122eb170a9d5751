"""Fault tests: the service killed, Asterisk restarted, Redis restarted, mid-campaign.

Whatever happens, every person ends with exactly one final outcome, nobody who answered is
called again, and no key press is lost (everyone whose phone presses 1 ends `available`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ivr.campaign import report as reports
from ivr.campaign import store
from ivr.campaign.spec import CampaignSpec
from ivr.config import Config
from ivr.dialer.alerter import Alerter
from ivr.dialer.worker import DialerWorker, WorkerSettings
from ivr.outcomes import Outcome
from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.redisserver import RedisServer
from ivr.staff.roster import Person
from tests.campaigntools import attempts_by_person, person, states, wait_done, wait_events

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def mixed_staff(count: int) -> list[Person]:
    """Mostly people who press 1 (their key presses must all count), some 2, some no answer."""
    people = []
    for i in range(count):
        kind = i % 10
        number = {7: f"1122{i:05d}", 8: f"2000{i:05d}", 9: f"3000{i:05d}"}.get(
            kind, f"1{i % 3}1{i:05d}"
        )
        people.append(person(f"p{i:04d}", ("nurse", "doctor")[i % 2], number))
    return people


async def check_invariants(db: aioredis.Redis, cid: str, people: list[Person]) -> None:
    final = await states(db, cid)
    assert all(s["s"] == "d" for s in final.values()), "every person has a final outcome"
    tries = await attempts_by_person(db, cid)
    for p in people:
        answered = [o for o in tries[p.id] if o in ("available", "unavailable")]
        assert len(answered) <= 1, f"{p.id} answered twice: {tries[p.id]}"
        if answered:
            assert tries[p.id][-1] == answered[0], f"{p.id} called after answering"
        if p.phones[0][2] == "1" and p.phones[0][0] == "1":
            assert final[p.id]["o"] == "available", f"{p.id}'s key press lost: {tries[p.id]}"
    report = await reports.report(db, cid)
    assert sum(report[o] for o in Outcome) == report["total"] == len(people)
    assert report["pending"] == 0


SPEC = CampaignSpec(
    messages={"fr": "Test de panne."}, ring_timeout=6, attempts=3, retry_delay=1, amd=False,
    ask_eta=False,
)  # fmt: skip


async def start_worker(redis_url: str, name: str, log: Path) -> asyncio.subprocess.Process:
    """An `ivr worker` whose log goes to the end of `log` (shown if the test fails)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(IVR_CONFIG=str(sandbox.env_file()), IVR_REDIS_URL=redis_url)
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr", "worker", "--name", name, "--capacity", "40",
            env=env, stdout=out, stderr=out,
        )  # fmt: skip


async def test_service_killed_at_several_points_resumes(
    sandbox_config: Config, redis_server: RedisServer, db: aioredis.Redis, tmp_path: Path
) -> None:
    people = mixed_staff(240)
    cid = await store.create(db, SPEC, people)
    log = tmp_path / "workers.log"
    proc = await start_worker(redis_server.url, "fault-0", log)
    try:
        for finals in (20, 80, 150):
            await wait_events(db, cid, "final", finals, timeout=90)
            proc.send_signal(signal.SIGKILL)  # mid-call: dozens of calls are in flight
            await proc.wait()
            proc = await start_worker(redis_server.url, "fault-0", log)
        try:
            await wait_done(db, cid, timeout=180)
        except AssertionError as exc:
            tail = log.read_text(errors="replace").splitlines()[-40:]
            raise AssertionError(
                f"{exc}\nthe workers' last log lines:\n" + "\n".join(tail)
            ) from None
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
    await check_invariants(db, cid, people)


async def run_with_fault(
    alerter: Alerter, db: aioredis.Redis, fault: Callable[[], Awaitable[None]]
) -> tuple[str, list[Person]]:
    """A 60-person campaign on an in-process worker; `fault` strikes after 10 final outcomes."""
    people = mixed_staff(60)
    stop = asyncio.Event()
    worker = DialerWorker(alerter, db, WorkerSettings(name="w-fault", capacity=20))
    running = asyncio.create_task(worker.run(stop))
    try:
        cid = await store.create(db, SPEC, people)
        await wait_events(db, cid, "final", 10)
        await fault()
        await wait_done(db, cid, timeout=180)
    finally:
        stop.set()
        await running
    await check_invariants(db, cid, people)
    return cid, people


@pytest.mark.serial
async def test_asterisk_restart_mid_campaign(alerter: Alerter, db: aioredis.Redis) -> None:
    async def restart_asterisk() -> None:
        await asyncio.to_thread(sandbox.restart)

    cid, people = await run_with_fault(alerter, db, restart_asterisk)
    tries = await attempts_by_person(db, cid)
    assert sum(len(t) for t in tries.values()) > len(people), "calls cut by the restart retried"


async def test_redis_restart_mid_campaign(
    alerter: Alerter, redis_server: RedisServer, db: aioredis.Redis
) -> None:
    async def restart_redis() -> None:
        await asyncio.to_thread(redis_server.stop)
        await asyncio.sleep(2)  # Redis stays down while calls end and keys are pressed
        await asyncio.to_thread(redis_server.start)

    await run_with_fault(alerter, db, restart_redis)
