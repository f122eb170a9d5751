"""Each person's delivery plan and where it stands, through the API (`GET .../people`) and the
console's live stream, on a real redis-server: the scheduler's own scripts move two doctors
through a voice, SMS, voice plan as a worker and an SMS sender would (no Asterisk here)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from ivr.api import schemas
from ivr.api.validate import Checker
from ivr.campaign.scheduler import Scheduler
from ivr.config import Config
from tests.api.test_console import Sse, stream_url
from tests.api.test_http import Api, start_api

DELAY_S = 120
PERSON = Checker(schemas.CAMPAIGN_PERSON)


@pytest.fixture
async def api(db: aioredis.Redis) -> AsyncIterator[Api]:
    # An installation that sends SMS (the API only queues them: workers send).
    made = await start_api(db, Config(sms_sip_to="pjsip:gw/sip:{number}@127.0.0.1:5070"))
    await made.roster()
    yield made
    await made.client.close()


def steps(row: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(s["channel"], s["state"], s["result"]) for s in row["plan"]]


async def people(api: Api, cid: str) -> dict[str, dict[str, Any]]:
    got = await api.json("GET", f"/api/campaigns/{cid}/people", "viewer")
    for row in got["items"]:
        assert PERSON.problems(row, "person") == [], row
    return {row["id"]: row for row in got["items"]}


async def test_each_persons_plan_and_where_it_stands(api: Api) -> None:
    before = time.time()
    cid = await api.start(roles=["doctor"], plan=["voice", "sms", "voice"], retry_delay=DELAY_S)
    rows = await people(api, cid)
    for row in rows.values():
        assert steps(row) == [
            ("voice", "due", None), ("sms", "planned", None), ("voice", "planned", None),
        ]  # fmt: skip
        assert before - 1 <= row["plan"][0]["at"] <= time.time() + 1, "due now"
    sse = Sse(await api.call("GET", await stream_url(api, cid), role=None))
    kind, snap = await sse.next()
    assert kind == "snapshot"
    assert {p["id"]: steps(p) for p in snap["people"]} == {k: steps(r) for k, r in rows.items()}

    # The first doctor called misses it: their SMS is due one interval later.
    s = Scheduler(api.db)
    now = int(time.time() * 1000) + 1000
    missed = await s.claim(cid, now, lease_ms=30_000, worker="w", asterisk="a")
    assert missed is not None
    assert steps((await people(api, cid))[missed.pid])[0] == ("voice", "calling", None)
    await s.finish(cid, missed.pid, missed.attempt, "no_answer", now, worker="w",
                   number=missed.number, detail="")  # fmt: skip
    await s.release(cid, missed.pid, missed.attempt, "w")
    row = (await people(api, cid))[missed.pid]
    assert steps(row) == [
        ("voice", "done", "no_answer"), ("sms", "due", None), ("voice", "planned", None),
    ]  # fmt: skip
    assert [e["at"] for e in row["plan"][:2]] == [now / 1000, now / 1000 + DELAY_S]
    # The live stream sends the person again with their plan as it now stands.
    update = await next_row(sse, missed.pid, lambda p: p["plan"][0]["state"] == "done")
    assert steps(update) == steps(row)

    # The SMS goes, then its receipt comes back; the second call is due one interval later.
    later = now + DELAY_S * 1000
    job = await s.sms_claim(cid, later, lease_ms=30_000, worker="m")
    assert job is not None and job.pid == missed.pid
    assert steps((await people(api, cid))[missed.pid])[1] == ("sms", "sending", None)
    await s.sms_done(cid, job.job, "sent", later, number="0644444444", detail="sip")
    assert steps((await people(api, cid))[missed.pid])[1:] == [
        ("sms", "done", "sent"), ("voice", "due", None),
    ]  # fmt: skip
    assert await s.sms_receipt(cid, job.job, "delivered", later + 5000)
    row = (await people(api, cid))[missed.pid]
    assert steps(row)[1] == ("sms", "done", "delivered")
    assert [e["at"] for e in row["plan"][1:]] == [later / 1000, later / 1000 + DELAY_S]
    update = await next_row(sse, missed.pid, lambda p: p["plan"][1]["state"] == "done")
    assert steps(update)[1] == ("sms", "done", "sent")

    # The other doctor answers their first call: the rest of their plan is not needed.
    other = await api.answer(cid)
    assert other != missed.pid
    assert steps((await people(api, cid))[other]) == [
        ("voice", "done", "available"), ("sms", "not_needed", None),
        ("voice", "not_needed", None),
    ]  # fmt: skip
    # An SMS reply ends the first doctor's plan: no step ran for it, the row says how.
    assert (await s.answer(cid, missed.pid, "available", later + 9000, "0644444444", "sms"))[0]
    row = (await people(api, cid))[missed.pid]
    assert steps(row) == [
        ("voice", "done", "no_answer"), ("sms", "done", "delivered"),
        ("voice", "not_needed", None),
    ]  # fmt: skip
    assert (row["outcome"], row["answered_by"]) == ("available", "sms")
    sse.response.close()


async def next_row(sse: Sse, pid: str, ready: Any) -> dict[str, Any]:
    """The next row of `pid` in the stream's updates for which `ready(row)` holds."""
    while True:
        kind, data = await sse.next()
        for row in data.get("people", []) if kind == "update" else []:
            if row["id"] == pid and ready(row):
                return dict(row)
