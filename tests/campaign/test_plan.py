"""Delivery plans (voice, SMS, both) walked by the scheduler's Lua, against a real redis-server."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from ivr.campaign import plan, store
from ivr.campaign import report as reports
from ivr.campaign.scheduler import Scheduler
from ivr.campaign.spec import CampaignError, CampaignSpec
from ivr.keys import campaign_key, sms_due_part, sms_jobs_part
from tests.campaign.test_scheduler import LEASE, NOW, claim
from tests.campaigntools import events, person, states

DELAY = 60_000


async def start(db: aioredis.Redis, people: list, **spec: object) -> tuple[str, Scheduler]:
    fields: dict[str, object] = {"messages": {"fr": "x"}, "retry_delay": DELAY // 1000}
    fields.update(spec)
    cid = await store.create(db, CampaignSpec(**fields), people, sms=True)  # type: ignore[arg-type]
    for tier in ("due:0", "due:1"):
        key = campaign_key(cid, tier)
        members = await db.zrange(key, 0, -1)
        if members:
            await db.zadd(key, dict.fromkeys(members, NOW))
    return cid, Scheduler(db)


async def sms_claim(s: Scheduler, cid: str, now: int, worker: str = "m") -> object:
    return await s.sms_claim(cid, now, lease_ms=LEASE, worker=worker)


async def miss(s: Scheduler, cid: str, pid: str, now: int) -> list[str]:
    """Claim `pid`'s call and end it unanswered."""
    c = await claim(s, cid, now)
    assert c is not None and c.pid == pid  # type: ignore[attr-defined]
    n = c.attempt  # type: ignore[attr-defined]
    return await s.finish(cid, pid, n, "no_answer", now, worker="w", number="1", detail="")


def test_parse_normalises_and_refuses_with_the_step() -> None:
    assert plan.parse(" Voice, SMS ,sms+voice") == ("voice", "sms", "voice+sms")
    for text, words in [
        ("", "step 1"),
        ("voice,fax", "step 2 of the delivery plan is 'fax'"),
        ("sms,voice", "must start with voice"),
        (",".join(["voice"] * 11), "11 steps"),
    ]:
        with pytest.raises(plan.PlanError, match=words):
            plan.parse(text)


async def test_plans_as_the_installation_runs_them(db: aioredis.Redis) -> None:
    asked = CampaignSpec(messages={"fr": "x"}, plan=("voice+sms", "sms", "voice"))
    with pytest.raises(CampaignError, match="no SMS transport"):
        asked.check_sms(False)
    asked.check_sms(True)
    # A prepared scenario still calls where no gateway is configured: its SMS steps go.
    cid = await store.create(db, asked, [person("a", "nurse", "1")])
    assert json.loads(await db.hget(campaign_key(cid), "plan")) == ["voice", "voice"]
    default = CampaignSpec(messages={"fr": "x"}, attempts=2)
    cid = await store.create(db, default, [person("a", "nurse", "1")], sms=True)
    assert json.loads(await db.hget(campaign_key(cid), "plan")) == list(plan.DEFAULT)
    cid = await store.create(db, default, [person("a", "nurse", "1")])
    assert json.loads(await db.hget(campaign_key(cid), "plan")) == ["voice", "voice"]


async def test_voice_then_sms_then_voice_one_interval_apart(db: aioredis.Redis) -> None:
    cid, s = await start(db, [person("a", "nurse", "1", "2", sms="0611111111")])
    # The first step tries both numbers at once, then the SMS waits the interval.
    assert (await miss(s, cid, "a", NOW))[0] == "next_number"
    assert await miss(s, cid, "a", NOW + 10) == ["sms", str(NOW + 10 + DELAY)]
    assert await claim(s, cid, NOW + 10 + 2 * DELAY) is None, "no call during the SMS step"
    assert await sms_claim(s, cid, NOW + 10 + DELAY - 1) is None, "not before the interval"
    job = await sms_claim(s, cid, NOW + 10 + DELAY)
    assert job is not None and (job.pid, job.step) == ("a", 1)  # type: ignore[attr-defined]
    assert job.message_id.endswith("-0-s1")  # type: ignore[attr-defined]
    sent = NOW + 20 + DELAY
    done = await s.sms_done(cid, "a:1", "sent", sent, number="0611111111", detail="")
    assert done == ["sent", "next"]
    # The last voice step comes one interval after the SMS left, on the first number again.
    assert await claim(s, cid, sent + DELAY - 1) is None
    assert (await miss(s, cid, "a", sent + DELAY))[0] == "next_number"
    assert await miss(s, cid, "a", sent + DELAY) == ["final", "no_answer"]
    report = await reports.report(db, cid)
    assert (report["status"], report["no_answer"]) == ("done", 1)
    sms = [e for e in await events(db, cid) if e["type"] == "sms"]
    assert [(e["pid"], e["step"], e["result"]) for e in sms] == [("a", "1", "sent")]


async def test_an_sms_step_is_handed_out_once_even_after_a_crash(db: aioredis.Redis) -> None:
    cid, s = await start(db, [person("a", "nurse", "1", sms="0611111111")], plan=("voice", "sms"))
    await miss(s, cid, "a", NOW)
    job = await sms_claim(s, cid, NOW + DELAY, worker="m1")
    assert job is not None
    # The sender dies while sending: its lease expires. Nobody sends it again, it is `unknown`.
    assert await sms_claim(s, cid, NOW + DELAY + LEASE + 1, worker="m2") is None
    expired = await s.sms_expired(cid, NOW + DELAY + LEASE + 1)
    assert expired == ["a:1"]
    assert await s.sms_done(cid, "a:1", "unknown", NOW, number="", detail="lease expired") == [
        "unknown", "final",
    ]  # fmt: skip
    # The first sender comes back late with its result: ignored, counted once.
    assert await s.sms_done(cid, "a:1", "sent", NOW, number="", detail="") == ["stale"]
    # A replayed queue entry (NX cannot stop a re-add after the step left the queue) is skipped.
    await db.zadd(campaign_key(cid, sms_due_part), {"a:1": NOW})
    assert await sms_claim(s, cid, NOW + 2 * DELAY) is None
    counts = await db.hgetall(campaign_key(cid, "counts"))
    assert counts.get("sms:unknown") == "1" and "sms:sent" not in counts
    assert (await states(db, cid))["a"]["o"] == "no_answer", "the plan ended on its last call"


async def test_an_sms_reply_ends_the_plan_and_counts_once(db: aioredis.Redis) -> None:
    cid, s = await start(
        db, [person("a", "nurse", "1", sms="0611111111"), person("b", "nurse", "2")],
        plan=("voice", "sms", "voice"), quotas={"nurse": 1},
    )  # fmt: skip
    await miss(s, cid, "a", NOW)
    rows = {r["id"]: r for r in await reports.people(db, cid)}
    assert (rows["a"]["state"], rows["a"]["step"]) == ("sms", 1), "waiting on its SMS step"
    job = await sms_claim(s, cid, NOW + DELAY)
    assert job is not None
    await s.sms_done(cid, "a:1", "sent", NOW + DELAY, number="0611111111", detail="")
    # Replying "1" twice: the first is the answer; it meets the nurses' quota.
    got = await s.answer(cid, "a", "available", NOW + DELAY + 5, "0611111111", "sms")
    assert got == ["quota_met", "nurse"]
    again = await s.answer(cid, "a", "available", NOW + DELAY + 6, "0611111111", "sms")
    assert again == ["already", "available"]
    # A yes by SMS from another nurse now is not counted (checked with the count, atomically);
    # a no still is.
    assert await s.answer(cid, "b", "available", NOW + DELAY + 7, "2", "sms") == [
        "quota_full", "nurse",
    ]  # fmt: skip
    # No more call for `a`; `b` (same role) is cancelled by the quota, not called.
    assert await claim(s, cid, NOW + 10 * DELAY) is None
    report = await reports.report(db, cid)
    assert (report["available"], report["cancelled"], report["status"]) == (1, 1, "done")
    st = (await states(db, cid))["a"]
    assert st["sr"] == 1 and st["o"] == "available"
    rows = {r["id"]: r for r in await reports.people(db, cid)}
    assert rows["a"]["answered_by"] == "sms" and rows["b"]["answered_by"] is None
    counts = await db.hgetall(campaign_key(cid, "counts"))
    assert counts["sms:answered"] == "1"


async def test_an_answer_while_waiting_for_the_sms_skips_it(db: aioredis.Redis) -> None:
    cid, s = await start(db, [person("a", "nurse", "1", sms="0611111111")])
    await miss(s, cid, "a", NOW)
    # Answered on the callback line before the SMS left: the SMS step is skipped, never sent.
    assert await s.answer(cid, "a", "unavailable", NOW + 5, "1") == ["final", "unavailable"]
    assert await sms_claim(s, cid, NOW + DELAY) is None
    assert await db.hget(campaign_key(cid, sms_jobs_part), "a:1") == "skipped"


async def test_voice_and_sms_at_once(db: aioredis.Redis) -> None:
    cid, s = await start(
        db, [person("a", "nurse", "1", sms="0611111111")], plan=("voice+sms", "voice")
    )
    c = await claim(s, cid, NOW)
    assert c is not None
    # The SMS leaves with the first call, and pressing 1 during the call does not undo it.
    job = await sms_claim(s, cid, NOW)
    assert job is not None and job.step == 0  # type: ignore[attr-defined]
    # The call is put back (never placed) and claimed again: no second SMS.
    assert await s.requeue(cid, "a", 1, NOW)
    again = await claim(s, cid, NOW)
    assert again is not None and again.attempt == 1  # type: ignore[attr-defined]
    assert await sms_claim(s, cid, NOW) is None
    await s.finish(cid, "a", 1, "available", NOW + 5, worker="w", number="1", detail="")
    assert await s.sms_done(cid, "a:0", "sent", NOW + 6, number="0611111111", detail="") == ["sent"]
    report = await reports.report(db, cid)
    assert (report["available"], report["status"]) == (1, "done")
    assert await sms_claim(s, cid, NOW + DELAY) is None


async def test_stop_cancels_people_waiting_for_an_sms(db: aioredis.Redis) -> None:
    cid, s = await start(db, [person("a", "nurse", "1", sms="0611111111")])
    await miss(s, cid, "a", NOW)
    assert await store.stop(db, cid) == "stopped"
    assert (await states(db, cid))["a"]["o"] == "cancelled"
    assert await sms_claim(s, cid, NOW + DELAY) is None
    assert (await reports.report(db, cid))["pending"] == 0


async def test_an_sms_claim_sent_again_with_its_token_gets_the_same_step(
    db: aioredis.Redis,
) -> None:
    people = [person(p, "nurse", "1", sms="0611111111") for p in ("a", "b")]
    cid, s = await start(db, people, plan=("voice", "sms"))
    await miss(s, cid, "a", NOW)
    await miss(s, cid, "b", NOW)
    # The answer to the first claim is lost (a failover): the client sends it again.
    first = await s.sms_claim(cid, NOW + DELAY, lease_ms=LEASE, worker="m/0", token="t1")
    again = await s.sms_claim(cid, NOW + DELAY, lease_ms=LEASE, worker="m/0", token="t1")
    assert first is not None and again == first
    # A new token is a new claim; another sender's token names nothing of this one's.
    other = await s.sms_claim(cid, NOW + DELAY, lease_ms=LEASE, worker="m/0", token="t2")
    assert other is not None and other.job != first.job
    assert await s.sms_claim(cid, NOW + DELAY, lease_ms=LEASE, worker="m/1", token="t2") is None
    # Once its step is done, the old token gets nothing back (not the step a second time).
    await s.sms_done(cid, other.job, "sent", NOW + DELAY, number="0611111111", detail="")
    assert await s.sms_claim(cid, NOW + DELAY, lease_ms=LEASE, worker="m/0", token="t2") is None
