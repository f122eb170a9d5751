"""Helpers for campaign tests: simulated staff, running workers until a campaign is over."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any

from redis.asyncio import Redis

from ivr.campaign import report as reports
from ivr.keys import campaign_key
from ivr.retry import retrying
from ivr.staff.roster import Person


def person(pid: str, role: str, *phones: str, **extra: Any) -> Person:
    fields: dict[str, Any] = {
        "id": pid,
        "name": f"Staff {pid}",
        "role": role,
        "unit": "urgences",
        "phones": tuple(phones),
        "language": "fr",
        "on_call": False,
        "backup": None,
        "tags": frozenset(),
    }
    fields.update(extra)
    return Person(**fields)


async def wait_done(db: Redis, cid: str, timeout: float = 120) -> dict[str, Any]:
    """Block on the campaign's event log until it is over; return the report."""

    async def loop() -> dict[str, Any]:
        last = "0"
        while True:
            # Retried as the service retries: a test may restart Redis under this client.
            report = await retrying(reports.report, db, cid)
            if report["status"] != "running" and report["in_flight"] == 0:
                return report
            events_key = campaign_key(cid, "events")
            got = await retrying(db.xread, {events_key: last}, block=1000)
            if got:
                last = got[0][1][-1][0]

    try:
        return await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(await _stuck(db, cid, timeout)) from None


async def _stuck(db: Redis, cid: str, timeout: float) -> str:
    """Why a campaign is not over: who is not done, their state, the leases, the last events."""
    left = {pid: st for pid, st in (await states(db, cid)).items() if st.get("s") != "d"}
    leases = await db.zrange(campaign_key(cid, "leases"), 0, -1, withscores=True)
    tail = [fields for _, fields in await db.xrevrange(campaign_key(cid, "events"), count=8)]
    status = await db.hget(campaign_key(cid), "status")
    return (
        f"campaign {cid} ({status}) not over after {timeout:g} s: {len(left)} not done, "
        f"e.g. {dict(list(left.items())[:8])}; leases {leases[:8]} (now {time.time() * 1000:.0f}); "
        f"last events {tail}"
    )


async def wait_events(db: Redis, cid: str, kind: str, count: int, timeout: float = 60) -> None:
    """Block until the event log holds `count` events of type `kind`."""

    async def loop() -> None:
        last, seen = "0", 0
        while seen < count:
            got = await db.xread({campaign_key(cid, "events"): last}, block=1000)
            for _, entries in got:
                for entry_id, fields in entries:
                    last = entry_id
                    seen += fields.get("type") == kind

    await asyncio.wait_for(loop(), timeout)


async def events(db: Redis, cid: str) -> list[dict[str, str]]:
    return [fields for _, fields in await db.xrange(campaign_key(cid, "events"))]


async def attempts_by_person(db: Redis, cid: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for event in await events(db, cid):
        if event["type"] == "attempt":
            out[event["pid"]].append(event["outcome"])
    return out


async def states(db: Redis, cid: str) -> dict[str, dict[str, Any]]:
    raw = await db.hgetall(campaign_key(cid, "state"))
    return {pid: json.loads(value) for pid, value in raw.items()}
