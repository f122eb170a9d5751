"""`ivr demo`: the main job on the embedded default.

Starts the sandbox Asterisk and a private redis-server (append-only on), calls a handful of
simulated staff whose phones behave in every way the service must handle, records each outcome
in Redis, and prints them beside the outcome each phone should produce.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import redis.asyncio as aioredis

from ivr import sandbox
from ivr.alert import Alerter
from ivr.calls import CallResult
from ivr.config import Config
from ivr.outcomes import Outcome
from ivr.redisserver import RedisServer

MESSAGE = (
    "Alerte plan blanc au centre hospitalier. Le plan blanc est déclenché. "
    "Nous avons besoin de personnel en renfort."
)


@dataclass(frozen=True)
class SimStaff:
    name: str
    number: str
    behaviour: str
    expected: Outcome


#: One simulated phone per behaviour (numbering in ivr/dialplans/ivr-sim.conf).
STAFF = (
    SimStaff("Claire Martin, nurse", "1011001", "answers, presses 1", Outcome.AVAILABLE),
    SimStaff("Paul Durand, doctor", "1121002", "answers after 1 s, presses 2", Outcome.UNAVAILABLE),
    SimStaff("Léa Bernard, nurse", "1031003", "presses star (repeat), then 1", Outcome.AVAILABLE),
    SimStaff("Hugo Petit, anaesthetist", "1041004", "presses 9, then 1", Outcome.AVAILABLE),
    SimStaff("Emma Moreau, nurse", "1051005", "presses 1 and hangs up at once", Outcome.AVAILABLE),
    SimStaff("Louis Laurent, orderly", "2001006", "never answers", Outcome.NO_ANSWER),
    SimStaff("Chloé Simon, midwife", "3001007", "line busy", Outcome.BUSY),
    SimStaff("Jules Michel, doctor", "4101008", "hangs up during the message", Outcome.HUNG_UP),
    SimStaff("Inès Garcia, nurse", "1001009", "answers, never presses a key", Outcome.HUNG_UP),
    SimStaff("Nathan Roux, nurse", "5001010", "network congestion", Outcome.FAILED),
    SimStaff("Sarah Fournier, surgeon", "9001011", "unknown number", Outcome.FAILED),
)

RESULTS_KEY = "ivr:demo:results"


async def run_demo(*, as_json: bool = False) -> int:
    """Run the demo; exit code 0 when every phone produced its expected outcome."""
    sandbox.start()
    config = sandbox.config(IVR_RING_TIMEOUT="8", IVR_LANGUAGE="fr")
    with tempfile.TemporaryDirectory(prefix="ivr-demo-") as tmp, RedisServer(Path(tmp)) as server:
        config = replace(config, redis_url=server.url)
        db = aioredis.from_url(config.redis_url, decode_responses=True)
        try:
            results = await _call_all(config, db)
            stored = await db.hlen(RESULTS_KEY)
        finally:
            await db.aclose()
    ok = all(r.outcome == s.expected for s, r in results) and stored == len(STAFF)
    if as_json:
        print(
            json.dumps(
                {
                    "ok": ok,
                    "calls": [
                        {"name": s.name, "behaviour": s.behaviour, "expected": s.expected.value}
                        | r.as_dict()
                        for s, r in results
                    ],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        print(f"{'staff':28} {'number':9} {'phone behaviour':34} {'outcome':12} expected")
        for s, r in results:
            mark = "ok" if r.outcome == s.expected else f"MISMATCH ({s.expected.value})"
            print(f"{s.name:28} {s.number:9} {s.behaviour:34} {r.outcome.value:12} {mark}")
        verdict = "all as expected" if ok else "MISMATCHES"
        print(f"{len(results)} calls, {stored} outcomes stored in Redis: {verdict}")
    return 0 if ok else 1


async def _call_all(config: Config, db: aioredis.Redis) -> list[tuple[SimStaff, CallResult]]:
    async with Alerter(config) as alerter:

        async def one(staff: SimStaff) -> tuple[SimStaff, CallResult]:
            request = await alerter.request(
                staff.number, MESSAGE, variables={"IVR_KEY_WAIT": "4", "IVR_MAX_TRIES": "2"}
            )

            async def record(result: CallResult) -> None:
                await db.hset(RESULTS_KEY, staff.number, json.dumps(result.as_dict()))

            return staff, await alerter.caller.call(request, record)

        # Render once before the calls go out in parallel.
        await alerter.request(STAFF[0].number, MESSAGE)
        results = await asyncio.gather(*(one(s) for s in STAFF))
        return list(results)
