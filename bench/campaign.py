"""Line utilisation of the campaign engine, side by side with a bare panoramisk loop.

    .venv/bin/python bench/campaign.py --staff 2000 --channels 100
    .venv/bin/python bench/campaign.py --staff 15000 --channels 250

Both runs place the same calls through the sandbox Asterisk into the same alert dialplan
(simulated phones `1071...`: answer at once, press 1, hear the confirmation; a few seconds):

- ours: a roster in a private redis-server (append-only on), a campaign, one dialer worker;
- bare: a loop on panoramisk alone that keeps the same number of channels busy, no Redis, no
  bookkeeping: the physical limit of this PBX for these calls.

Printed: wall time, ideal wall time (sum of call durations / channels), their ratio for each,
ours / bare, the delay from `campaign start` to the first call ringing, service CPU per 1,000
calls, and Redis memory per person for the campaign.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from panoramisk import Manager
from redis.asyncio import Redis

from ivr.campaign import report as reports
from ivr.campaign import store
from ivr.campaign.spec import CampaignSpec
from ivr.config import Config
from ivr.db import connect, connect_sentinel
from ivr.dialer.alerter import Alerter
from ivr.dialer.worker import DialerWorker, WorkerSettings
from ivr.keys import campaign_key
from ivr.pbx.calls import CallRequest, CallResult
from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.redisserver import RedisServer
from ivr.sandbox.sentinel import MASTER, SentinelCluster
from ivr.staff.roster import Person

MESSAGE = "Test de charge."


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def roster(staff: int) -> list[Person]:
    return [
        Person(
            id=f"B{i:06d}",
            name=f"Staff {i}",
            role=("nurse", "doctor", "orderly")[i % 3],
            unit="bench",
            phones=(f"1071{i:06d}",),
            language="fr",
            on_call=i % 10 == 0,
            backup=None,
            tags=frozenset(),
        )  # fmt: skip
        for i in range(staff)
    ]


@contextlib.contextmanager
def private_redis(sentinel: bool) -> Iterator[tuple[Redis, str]]:
    """A client of a private redis-server, or of a primary with a replica through three
    Sentinels (every claim and outcome then waits for the replica), and the primary's URL."""
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        if sentinel:
            with SentinelCluster(Path(tmp)) as cluster:
                yield connect_sentinel(cluster.addresses, MASTER), cluster.primary().url
        else:
            with RedisServer(Path(tmp)) as server:
                yield connect(server.url), server.url


async def ours(
    config: Config,
    staff: int,
    channels: int,
    *,
    first_ring_only: bool = False,
    sentinel: bool = False,
) -> dict[str, Any]:
    with private_redis(sentinel) as (db, url):
        durations: list[float] = []
        first_ring: list[float] = []
        try:
            async with Alerter(replace(config, redis_url=url)) as alerter:
                await alerter.message(MESSAGE, "fr")
                await alerter.prompts("fr")
                real_call = alerter.caller.call

                async def timed(request: CallRequest, on_outcome: Any = None) -> CallResult:
                    result = await real_call(request, on_outcome)
                    if result.ended_at is not None:
                        durations.append(result.ended_at - result.started_at)
                    return result

                alerter.caller.call = timed  # type: ignore[method-assign]

                def on_event(message: Any) -> None:
                    if (
                        not first_ring
                        and message.get("Event") == "Newstate"
                        and str(message.get("Uniqueid", "")).startswith("ivr-")
                    ):
                        first_ring.append(time.monotonic())

                alerter.link.on_event(on_event)
                people = roster(staff)
                used_before = int((await db.info("memory"))["used_memory"])
                stop = asyncio.Event()
                worker = DialerWorker(
                    alerter, db, WorkerSettings(name="bench", capacity=channels, lease=60)
                )
                running = asyncio.create_task(worker.run(stop))
                await asyncio.sleep(0.2)  # let the worker reach its idle wait, as in service
                spec = CampaignSpec(
                    messages={"fr": MESSAGE}, ring_timeout=10, attempts=1, amd=False,
                    ask_eta=False, escalate=False,
                )  # fmt: skip
                cpu0, t0 = _cpu(), time.monotonic()
                cid = await store.create(db, spec, people)
                t_created = time.monotonic()
                if first_ring_only:
                    while not first_ring:
                        await db.xread({campaign_key(cid, "events"): "$"}, block=100)
                    await store.stop(db, cid)
                last = "0"
                while True:
                    got = await db.xread({campaign_key(cid, "events"): last}, block=1000)
                    if got:
                        last = got[0][1][-1][0]
                    meta = await db.hget(campaign_key(cid), "status")
                    inflight = int(await db.zcard(campaign_key(cid, "leases")))
                    if meta in ("done", "stopped") and inflight == 0 and worker.in_flight == 0:
                        break
                wall = time.monotonic() - t0
                cpu = _cpu() - cpu0
                report = await reports.report(db, cid)
                keys = [k async for k in db.scan_iter(match=campaign_key(cid) + "*")]
                campaign_bytes = sum([int(await db.memory_usage(k) or 0) for k in keys])
                used_after = int((await db.info("memory"))["used_memory"])
                stop.set()
                await running
                replication = worker.scheduler.replication
        finally:
            await db.aclose()
    return {
        "calls": len(durations),
        "available": report["available"],
        "wall_s": wall,
        "ideal_s": sum(durations) / channels,
        "mean_call_s": sum(durations) / max(len(durations), 1),
        "first_ring_ms": (first_ring[0] - t0) * 1000 if first_ring else None,
        "create_ms": (t_created - t0) * 1000,
        "cpu_s_per_1000_calls": cpu / max(len(durations), 1) * 1000,
        "redis_bytes_per_person": campaign_bytes / staff,
        "redis_used_delta_per_person": (used_after - used_before) / staff,
        "writes_a_replica_acknowledged": replication.acked,
        "writes_not_acknowledged": replication.unacked,
    }


async def bare(
    config: Config, staff: int, channels: int, message: str, prompts: str
) -> dict[str, Any]:
    """The same calls with panoramisk alone: originate, wait for Hangup, originate again."""
    manager = Manager(
        host=config.ami_host, port=config.ami_port, username=config.ami_user,
        secret=config.ami_secret, events="call", ping_delay=3600, ping_interval=3600,
    )  # fmt: skip
    logged_in = asyncio.get_running_loop().create_future()
    manager.on_login = lambda m: logged_in.done() or logged_in.set_result(True)
    await manager.connect()
    await asyncio.wait_for(logged_in, 10)
    ended: dict[str, asyncio.Future[float]] = {}

    def on_hangup(_: Any, message: Any) -> None:
        future = ended.get(str(message.get("Uniqueid", "")))
        if future is not None and not future.done():
            future.set_result(time.monotonic())

    manager.register_event("Hangup", on_hangup)
    slots = asyncio.Semaphore(channels)
    durations: list[float] = []

    async def one(i: int) -> None:
        try:
            uid = f"bare-{i}-{time.time_ns()}"
            hung_up = ended[uid] = asyncio.get_running_loop().create_future()
            start = time.monotonic()
            await manager.send_action({
                "Action": "Originate", "Channel": f"Local/1071{i:06d}@ivr-sim",
                "Context": "ivr-alert", "Exten": "s", "Priority": "1", "Timeout": "10000",
                "ChannelId": uid, "Async": "true",
                "Variable": [f"IVR_ATTEMPT={uid}", f"IVR_MSG={message}", f"IVR_PROMPTS={prompts}"],
            })  # fmt: skip
            durations.append(await hung_up - start)
            del ended[uid]
        finally:
            slots.release()

    tasks = []
    cpu0, t0 = _cpu(), time.monotonic()
    for i in range(staff):
        await slots.acquire()
        tasks.append(asyncio.ensure_future(one(i)))
    await asyncio.gather(*tasks)
    wall = time.monotonic() - t0
    cpu = _cpu() - cpu0
    manager.close()
    return {
        "calls": len(durations),
        "wall_s": wall,
        "ideal_s": sum(durations) / channels,
        "mean_call_s": sum(durations) / max(len(durations), 1),
        "cpu_s_per_1000_calls": cpu / max(len(durations), 1) * 1000,
    }


async def sentinel_side_by_side(config: Config, staff: int, channels: int, as_json: bool) -> int:
    """The same campaign on one redis-server, then through Sentinel with WAIT."""
    one = await ours(config, staff, channels)
    through = await ours(config, staff, channels, sentinel=True)
    if through["writes_not_acknowledged"] or not through["writes_a_replica_acknowledged"]:
        print("the replica did not acknowledge every write: not measured", file=sys.stderr)
        return 1
    ratios = {
        name: run["wall_s"] / run["ideal_s"] for name, run in (("one", one), ("wait", through))
    }
    result = {"staff": staff, "channels": channels, "one_server": one, "sentinel_wait": through,
              "wait_over_one_server": through["wall_s"] / one["wall_s"]}  # fmt: skip
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{staff} staff on {channels} channels")
    for name, run in (("one server", one), ("Sentinel + WAIT", through)):
        print(
            f"  {name}: {run['calls']} calls, wall {run['wall_s']:.1f} s, ideal "
            f"{run['ideal_s']:.1f} s, wall/ideal {run['wall_s'] / run['ideal_s']:.3f}, "
            f"CPU {run['cpu_s_per_1000_calls']:.2f} s per 1,000 calls, "
            f"{run['writes_a_replica_acknowledged']} writes acknowledged by the replica"
        )
    print(
        f"  wall/ideal: {ratios['wait']:.3f} / {ratios['one']:.3f}; Sentinel + WAIT / one server "
        f"wall time: {result['wait_over_one_server']:.3f}"
    )
    return 0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--first-ring", action="store_true", help="only measure start -> first call ringing"
    )
    parser.add_argument(
        "--sentinel",
        action="store_true",
        help="ours on one redis-server, then through Sentinel waiting for a replica",
    )
    args = parser.parse_args()
    sandbox.start()
    config = sandbox.config()
    # Clear the journal of earlier runs: the bare loop leaves its entries behind.
    async with Alerter(config) as alerter:
        message = await alerter.message(MESSAGE, "fr")
        prompts = await alerter.prompts("fr")
        await alerter.link.action({"Action": "DBDelTree", "Family": "ivr"})
    if args.sentinel:
        return await sentinel_side_by_side(config, args.staff, args.channels, args.json)
    if args.first_ring:
        runs = [await ours(config, args.staff, args.channels, first_ring_only=True)
                for _ in range(5)]  # fmt: skip
        rings = sorted(r["first_ring_ms"] for r in runs)
        print(f"{args.staff} staff: campaign start -> first call ringing, 5 runs: "
              + ", ".join(f"{r:.0f} ms" for r in rings)
              + f"; create() returned after {runs[0]['create_ms']:.0f} ms")  # fmt: skip
        return 0
    mine = await ours(config, args.staff, args.channels)
    raw = await bare(config, args.staff, args.channels, message, prompts)
    async with Alerter(config) as alerter:
        await alerter.link.action({"Action": "DBDelTree", "Family": "ivr"})
    result = {
        "staff": args.staff,
        "channels": args.channels,
        "ours": mine,
        "bare": raw,
        "ours_wall_over_ideal": mine["wall_s"] / mine["ideal_s"],
        "bare_wall_over_ideal": raw["wall_s"] / raw["ideal_s"],
        "ours_over_bare": mine["wall_s"] / raw["wall_s"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.staff} staff on {args.channels} channels")
        for name, run in (("ours", mine), ("bare", raw)):
            print(
                f"  {name}: {run['calls']} calls, wall {run['wall_s']:.1f} s, ideal "
                f"{run['ideal_s']:.1f} s (mean call {run['mean_call_s']:.2f} s), "
                f"wall/ideal {run['wall_s'] / run['ideal_s']:.3f}, "
                f"CPU {run['cpu_s_per_1000_calls']:.2f} s per 1,000 calls"
            )
        print(f"  ours/bare wall time: {result['ours_over_bare']:.3f}")
        print(f"  campaign start -> first call ringing: {mine['first_ring_ms']:.0f} ms")
        print(
            f"  Redis: {mine['redis_bytes_per_person']:.0f} B per person in campaign keys "
            f"({mine['redis_used_delta_per_person']:.0f} B used_memory delta)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
