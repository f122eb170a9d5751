"""Creating a campaign: ours (each step a Lua script safe to send twice) side by side with the
plain pipelined writes it replaced (HSET/ZADD in a MULTI, not safe to send twice).

    .venv/bin/python bench/create.py --staff 15000 --rounds 5

One private redis-server (append-only on, as in production), the two ways alternated in each
round on the same server (emptied before each). Printed for each, median of the rounds: the
first transaction (the campaign and its first FIRST_BATCH people: what the workers start
calling at once), the whole creation, and ours / plain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from ivr import keys
from ivr.campaign import store
from ivr.campaign.scheduler import TIERS
from ivr.campaign.spec import CampaignSpec
from ivr.campaign.state import PersonState
from ivr.db import connect
from ivr.keys import campaign_key
from ivr.sandbox.redisserver import RedisServer
from ivr.staff.roster import Person


def roster(n: int) -> list[Person]:
    roles = ("nurse", "doctor", "anaesthetist", "midwife")
    return [
        Person(
            f"S{i:06d}",
            f"Staff {i}",
            roles[i % 4],
            f"unit{i % 40}",
            (f"06{i:08d}", f"01{i:08d}"),
            on_call=i % 10 == 0,
        )  # fmt: skip
        for i in range(n)
    ]


async def timed(redis: Redis, creating: Coroutine[Any, Any, object]) -> tuple[float, float]:
    """(first transaction, whole) in seconds. The first is when the creation's `start <id>`
    on the wake channel arrives, as a worker hears it: both ways publish it with that
    transaction."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.wake_channel)
    await pubsub.get_message(timeout=1.0)  # the subscription's confirmation
    begun = time.perf_counter()
    task = asyncio.ensure_future(creating)
    while (await pubsub.get_message(timeout=10.0)) is None:
        pass
    first = time.perf_counter() - begun
    await task
    whole = time.perf_counter() - begun
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    return first, whole


async def ours(redis: Redis, spec: CampaignSpec, people: list[Person]) -> None:
    await store.create(redis, spec, people)


async def plain(redis: Redis, spec: CampaignSpec, people: list[Person]) -> None:
    """The writes as they were: a MULTI of HSET/ZADD/XADD for the campaign and its first people,
    then a pipeline per batch (no id token, no guard: a second run repeats everything)."""
    ordered = sorted(people, key=lambda p: not p.on_call)
    cid = str(await redis.incr(keys.campaign_seq_key))
    started = store.now_ms()

    def add(pipe: Pipeline, start: int, chunk: list[Person]) -> None:
        records = {p.id: p.to_json(with_id=False) for p in chunk}
        pipe.hset(campaign_key(cid, "people"), mapping=records)  # type: ignore[arg-type]
        numbers = store.number_index(chunk)
        pipe.hset(campaign_key(cid, "numbers"), mapping=numbers)  # type: ignore[arg-type]
        states = {p.id: PersonState.queued(start + i) for i, p in enumerate(chunk)}
        pipe.hset(campaign_key(cid, "state"), mapping=states)  # type: ignore[arg-type]
        for tier, on_call in zip(TIERS, (True, False), strict=True):
            members = {p.id: started for p in chunk if p.on_call == on_call}
            if members:
                pipe.zadd(campaign_key(cid, tier), members)

    pipe = redis.pipeline(transaction=True)
    add(pipe, 0, ordered[: store.FIRST_BATCH])
    pipe.hset(campaign_key(cid, "counts"), mapping={"open": len(ordered), "total": len(ordered)})
    pipe.xadd(campaign_key(cid, "events"), {"type": "started", "t": started})
    pipe.hset(campaign_key(cid), mapping={"id": cid, "name": spec.name, "spec": spec.to_json()})
    pipe.zadd(keys.campaigns_key, {cid: started})
    pipe.sadd(keys.active_campaigns_key, cid)
    pipe.publish(keys.wake_channel, f"start {cid}")
    await pipe.execute()
    rest = redis.pipeline(transaction=False)
    for start in range(store.FIRST_BATCH, len(ordered), store.BATCH):
        add(rest, start, ordered[start : start + store.BATCH])
        await rest.execute()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--staff", type=int, default=15_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    people = roster(args.staff)
    spec = CampaignSpec(messages={"fr": "Plan blanc."}, quotas={"nurse": 100})
    times: dict[str, list[tuple[float, float]]] = {"ours": [], "plain": []}
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp)) as server:
        redis = connect(server.url)
        try:
            for _ in range(args.rounds):
                for name, way in (("ours", ours), ("plain", plain)):
                    await redis.flushdb()
                    times[name].append(await timed(redis, way(redis, spec, people)))
        finally:
            await redis.aclose()
    result: dict[str, object] = {"staff": args.staff, "rounds": args.rounds}
    for name, runs in times.items():
        result[name] = {
            "first_ms": round(statistics.median(f for f, _ in runs) * 1000, 1),
            "whole_ms": round(statistics.median(w for _, w in runs) * 1000, 1),
        }
    o, p = result["ours"], result["plain"]
    assert isinstance(o, dict) and isinstance(p, dict)
    result["first_ratio"] = round(o["first_ms"] / p["first_ms"], 2)
    result["whole_ratio"] = round(o["whole_ms"] / p["whole_ms"], 2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
