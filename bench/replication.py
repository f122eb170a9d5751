"""The cost of waiting for a replica (`WAIT 1`) on the campaign engine's writes.

    .venv/bin/python bench/replication.py
    .venv/bin/python bench/replication.py --people 2000 --channels 100 --rounds 5

A private Redis primary, one replica and three Sentinels on free ports (`ivr.sandbox.sentinel`).
Each round runs one campaign's Redis work — every person claimed, then their outcome written,
as a worker does around a call, with no call — three ways, in rotating order (the machine is
shared: all see the same load):

- one server: a client of the primary alone (`IVR_REDIS_URL`, today's single site);
- Sentinel, no WAIT: through Sentinel, acknowledged by the primary alone;
- Sentinel + WAIT: through Sentinel, each claim and outcome acknowledged by the replica too
  (`ivr.replication.Replication`, what the service does with IVR_REDIS_SENTINELS).

`--channels` steps run at once (a worker's calls in flight). Printed: the medians over the
rounds of the time per person (claim + outcome), and the ratios side by side. A real call
lasts seconds (6.5 s for the simulated phones of bench/campaign.py): the last line says what
the difference per person is against that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from ivr.campaign import store
from ivr.campaign.scheduler import Scheduler
from ivr.campaign.spec import CampaignSpec
from ivr.db import connect, connect_sentinel
from ivr.replication import Replication
from ivr.sandbox.sentinel import MASTER, SentinelCluster
from ivr.staff.roster import Person

SPEC = CampaignSpec(messages={"fr": "Essai."}, attempts=1, amd=False, ask_eta=False)
#: Seconds of line time per call in bench/campaign.py (answer, press 1, confirmation).
CALL_SECONDS = 6.5
WAYS = ("one server", "Sentinel, no WAIT", "Sentinel + WAIT")


def roster(people: int) -> list[Person]:
    return [
        Person(
            id=f"R{i:06d}",
            name=f"Staff {i}",
            role=("nurse", "doctor")[i % 2],
            unit="bench",
            phones=(f"1071{i:06d}",),
            language="fr",
            on_call=False,
            backup=None,
            tags=frozenset(),
        )  # fmt: skip
        for i in range(people)
    ]


async def one_campaign(
    redis: Redis, scheduler: Scheduler, people: list[Person], lanes: int
) -> float:
    """Seconds per person to claim everyone and write their outcome, `lanes` at a time."""
    cid = await store.create(redis, SPEC, people)
    started = time.perf_counter()

    async def lane(n: int) -> int:
        done = 0
        while True:
            now = int(time.time() * 1000)
            claim = await scheduler.claim(
                cid,
                now,
                lease_ms=30_000,
                worker=f"bench-{n}",
                asterisk="bench",
                token=f"{n}-{done}",
            )
            if claim is None:
                return done
            await scheduler.finish(
                cid, claim.pid, claim.attempt, "unavailable", now,
                worker=f"bench-{n}", number=claim.number, detail="bench",
            )  # fmt: skip
            done += 1

    done = sum(await asyncio.gather(*(lane(n) for n in range(lanes))))
    elapsed = time.perf_counter() - started
    if done != len(people):
        raise SystemExit(f"{done} people done out of {len(people)}")
    return elapsed / done


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    people = roster(args.people)
    with tempfile.TemporaryDirectory() as tmp, SentinelCluster(Path(tmp)) as cluster:
        primary = cluster.primary()
        single = connect(primary.url)
        sentinel = connect_sentinel(cluster.addresses, MASTER)
        schedulers = {
            WAYS[0]: (single, Scheduler(single)),
            WAYS[1]: (sentinel, Scheduler(sentinel)),
            WAYS[2]: (sentinel, Scheduler(sentinel)),
        }
        schedulers[WAYS[1]][1].replication = Replication(sentinel, wait=False)
        waiting = schedulers[WAYS[2]][1].replication
        assert waiting.enabled and not schedulers[WAYS[0]][1].replication.enabled
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        for lanes in (1, args.channels):
            for way in WAYS:
                times[way] = []
            for r in range(args.rounds):
                order = WAYS[r % 3 :] + WAYS[: r % 3]
                for way in order:
                    redis, scheduler = schedulers[way]
                    # Sequential runs take longer: fewer people keep the round short.
                    crowd = people if lanes > 1 else people[: max(50, len(people) // 5)]
                    times[way].append(await one_campaign(redis, scheduler, crowd, lanes))
            if waiting.degraded or waiting.unacked:
                raise SystemExit("the replica did not acknowledge every write: not measured")
            med = {way: statistics.median(times[way]) for way in WAYS}
            result = {
                "channels": lanes,
                "ms_per_person": {way: round(med[way] * 1000, 3) for way in WAYS},
                "wait_vs_no_wait": round(med[WAYS[2]] / med[WAYS[1]], 3),
                "wait_vs_one_server": round(med[WAYS[2]] / med[WAYS[0]], 3),
                "added_ms_per_person": round((med[WAYS[2]] - med[WAYS[1]]) * 1000, 3),
                "call_time_ratio": round(1 + (med[WAYS[2]] - med[WAYS[1]]) / CALL_SECONDS, 5),
            }
            if args.json:
                print(json.dumps(result))
                continue
            print(f"{lanes} at a time, {args.rounds} rounds, medians per person (claim + outcome):")
            for way in WAYS:
                print(f"  {way:18} {med[way] * 1000:8.3f} ms")
            print(
                f"  WAIT / no WAIT = {result['wait_vs_no_wait']}, "
                f"WAIT / one server = {result['wait_vs_one_server']}; "
                f"{result['added_ms_per_person']:+.3f} ms per person, against a "
                f"{CALL_SECONDS} s call: x{result['call_time_ratio']}"
            )
        await single.aclose()
        await sentinel.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
