"""The scheduler's Lua scripts against a real redis-server (no Asterisk needed)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from ivr.campaign import report as reports
from ivr.campaign import store
from ivr.campaign.scheduler import Scheduler
from ivr.campaign.spec import CampaignSpec
from tests.campaigntools import events, person, states

NOW = 1_900_000_000_000
LEASE = 30_000


async def start(db: aioredis.Redis, people: list, **spec: object) -> tuple[str, Scheduler]:
    fields: dict[str, object] = {"messages": {"fr": "x"}, "retry_delay": 60}
    fields.update(spec)
    cid = await store.create(db, CampaignSpec(**fields), people)  # type: ignore[arg-type]
    # Due times were set to the real clock: move them to our fake NOW.
    for tier in ("due:0", "due:1"):
        key = f"ivr:campaign:{cid}:{tier}"
        members = await db.zrange(key, 0, -1)
        if members:
            await db.zadd(key, dict.fromkeys(members, NOW))
    return cid, Scheduler(db)


async def claim(s: Scheduler, cid: str, now: int = NOW, worker: str = "w") -> object:
    return await s.claim(cid, now, lease_ms=LEASE, worker=worker, asterisk="a")


async def test_on_call_first_then_by_id(db: aioredis.Redis) -> None:
    people = [person("a", "nurse", "1"), person("b", "nurse", "2", on_call=True),
              person("c", "nurse", "3")]  # fmt: skip
    cid, s = await start(db, people)
    order = [(await claim(s, cid)).pid for _ in range(3)]  # type: ignore[union-attr]
    assert order == ["b", "a", "c"]
    assert await claim(s, cid) is None


async def test_finish_is_idempotent_and_final(db: aioredis.Redis) -> None:
    cid, s = await start(db, [person("a", "nurse", "1")])
    c = await claim(s, cid)
    assert c is not None and c.attempt == 1 and c.attempt_id.endswith("-0-1")
    assert await s.finish(cid, "a", 1, "available", NOW, worker="w", number="1", detail="") == [
        "final", "available",
    ]  # fmt: skip
    again = await s.finish(cid, "a", 1, "available", NOW, worker="w", number="1", detail="")
    assert again == ["stale"], "a replayed result is ignored"
    report = await reports.report(db, cid)
    assert (report["available"], report["pending"], report["status"]) == (1, 0, "done")
    assert [e["type"] for e in await events(db, cid)].count("attempt") == 1


async def test_next_number_at_once_then_rounds_after_delay(db: aioredis.Redis) -> None:
    cid, s = await start(db, [person("a", "nurse", "1", "2")], attempts=2, escalate=False)
    seen = []
    now = NOW
    for _ in range(4):
        c = await claim(s, cid, now)
        if c is None:
            assert await claim(s, cid, now + 59_000) is None, "not before the retry delay"
            now += 60_000
            c = await claim(s, cid, now)
        assert c is not None
        seen.append(c.number)
        await s.finish(cid, "a", c.attempt, "no_answer", now, worker="w", number=c.number,
                       detail="")  # fmt: skip
    assert seen == ["1", "2", "1", "2"]
    assert (await states(db, cid))["a"]["o"] == "no_answer"
    assert await claim(s, cid, now + 10**9) is None


async def test_quota_met_cancels_the_rest_of_the_role(db: aioredis.Redis) -> None:
    # Equal due times are taken in staff-id order: the doctor "z" comes last.
    people = [person(f"n{i}", "nurse", f"{i}") for i in range(4)] + [person("z", "doctor", "9")]
    cid, s = await start(db, people, quotas={"nurse": 1}, overcall=0)
    c1, c2 = await claim(s, cid), await claim(s, cid)
    assert c1 is not None and c2 is not None
    got = await s.finish(cid, c1.pid, 1, "available", NOW, worker="w", number="0", detail="")
    assert got == ["quota_met", "nurse"]
    nxt = await claim(s, cid)
    assert nxt is not None and nxt.pid == "z", "remaining nurses are cancelled, not dialled"
    final = await states(db, cid)
    assert [final[f"n{i}"]["o"] for i in (2, 3)] == ["cancelled", "cancelled"]
    # The nurse whose call was already ringing is counted by what she answers.
    await s.finish(cid, c2.pid, 1, "cancelled", NOW, worker="w", number="1", detail="")
    assert (await reports.report(db, cid))["by_role"]["nurse"]["cancelled"] == 3


async def test_overcall_caps_calls_in_flight_for_a_role(db: aioredis.Redis) -> None:
    people = [person(f"n{i}", "nurse", f"{i}") for i in range(10)] + [
        person(f"z{i}", "doctor", f"9{i}") for i in range(3)
    ]
    cid, s = await start(db, people, quotas={"nurse": 2}, overcall=1.5)
    claimed = [await claim(s, cid) for _ in range(6)]
    roles = [c.person.role for c in claimed if c is not None]
    assert roles.count("nurse") == 3, "ceil(2 needed x 1.5) nurses in flight at most"
    assert roles.count("doctor") == 3
    first = next(c for c in claimed if c is not None and c.person.role == "nurse")
    await s.finish(cid, first.pid, 1, "unavailable", NOW, worker="w", number="0", detail="")
    nxt = await claim(s, cid)
    assert nxt is not None and nxt.person.role == "nurse", "a freed slot goes to the role again"


async def test_escalation_adds_the_backup(db: aioredis.Redis) -> None:
    chief = person("chief", "doctor", "1", backup="deputy")
    deputy = person("deputy", "doctor", "2", unit="bloc")
    cid, s = await start(db, [chief, deputy], units=("urgences",), attempts=1)
    c = await claim(s, cid)
    assert c is not None and c.pid == "chief"
    got = await s.finish(cid, "chief", 1, "failed", NOW, worker="w", number="1", detail="")
    assert got == ["escalated", "deputy"]
    nxt = await claim(s, cid)
    assert nxt is not None and nxt.pid == "deputy" and nxt.index == 1
    assert (await reports.report(db, cid))["total"] == 2


async def test_requeue_and_reclaim(db: aioredis.Redis) -> None:
    cid, s = await start(db, [person("a", "nurse", "1"), person("b", "nurse", "2")])
    a, b = await claim(s, cid, worker="w1"), await claim(s, cid, worker="w1")
    assert a is not None and b is not None
    # A never-placed attempt goes back without counting as an attempt.
    assert await s.requeue(cid, "a", 1, NOW)
    again = await claim(s, cid, worker="w1")
    assert again is not None and again.pid == "a" and again.attempt == 1
    # w1 dies: before its lease expires only w1 (restarted, same name) takes its calls back.
    assert await s.reclaim(cid, NOW + 1, lease_ms=LEASE, worker="w2", asterisk="a", own=False) == []
    mine = await s.reclaim(cid, NOW + 1, lease_ms=LEASE, worker="w1", asterisk="a", own=True)
    assert sorted(p for p, _, _ in mine) == ["a", "b"]
    # After expiry another worker on the same Asterisk adopts them; another Asterisk cannot.
    later = NOW + 2 * LEASE
    assert await s.reclaim(cid, later, lease_ms=LEASE, worker="w3", asterisk="b", own=False) == []
    taken = await s.reclaim(cid, later, lease_ms=LEASE, worker="w2", asterisk="a", own=False)
    assert sorted((p, n) for p, n, _ in taken) == [("a", 1), ("b", 1)]
    assert not await s.release(cid, "a", 1, "w1"), "only the holder releases"
    assert await s.release(cid, "a", 1, "w2")


async def test_a_claim_sent_again_with_its_token_returns_the_same_person(
    db: aioredis.Redis,
) -> None:
    """A claim whose answer was lost (a failover) is sent again as is: same token, same
    person and attempt, nobody else taken; a new token takes the next person."""
    cid, s = await start(db, [person("a", "nurse", "1"), person("b", "nurse", "2")])

    async def take(token: str, worker: str = "w") -> tuple[str, int] | None:
        got = await s.claim(cid, NOW, lease_ms=LEASE, worker=worker, asterisk="a", token=token)
        return None if got is None else (got.pid, got.attempt)

    assert await take("t1") == ("a", 1)
    assert await take("t1") == ("a", 1), "the same claim, not b"
    assert await take("t1", worker="other") == ("b", 1), "tokens are per worker"
    assert await take("t2") is None
    final = await states(db, cid)
    assert (final["a"]["n"], final["b"]["n"]) == (1, 1)
    # Once the claim is over, its token gives nothing back.
    await s.finish(cid, "a", 1, "available", NOW, worker="w", number="1", detail="")
    assert await take("t1") is None


async def test_orphans_of_a_lost_asterisk_only_after_their_time(db: aioredis.Redis) -> None:
    """An attempt on Asterisk `a` whose workers all went silent: a worker on `b` takes it only
    once its lease expired `orphan_after` ago, and never while `a` has a live worker."""
    cid, s = await start(db, [person("x", "nurse", "1", "2"), person("y", "nurse", "3")])
    await s.claim(cid, NOW, lease_ms=LEASE, worker="wa", asterisk="a")
    await s.claim(cid, NOW, lease_ms=LEASE, worker="wb", asterisk="b")
    after = 60_000

    async def orphans(now: int, live: list[str]) -> list[tuple[str, int, int, str]]:
        return await s.orphans(
            cid, now, lease_ms=LEASE, worker="wb", asterisk="b", orphan_after_ms=after, live=live
        )

    expired = NOW + LEASE + 1
    assert await orphans(expired, ["b"]) == [], "not before orphan_after"
    assert await orphans(expired + after, ["a", "b"]) == [], "a still has a live worker"
    assert await orphans(expired + after, ["b"]) == [("x", 1, 0, "a")], "b's own: never"
    assert await orphans(expired + after, ["b"]) == [], "taken once"
    # Ended as lost, the person's next number is called from b.
    got = await s.finish(cid, "x", 1, "failed", NOW, worker="wb", number="1", detail="lost")
    assert got == ["next_number"]


async def test_a_campaign_its_creator_left_half_written_ends_and_says_so(
    db: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The creator stops after the first people (a crash, its site lost): those are called,
    and once WRITING_ABANDONED_AFTER has passed a worker's repair ends the campaign instead of
    leaving it running for ever, with an `incomplete` event."""
    people = [person(f"p{i:03d}", "nurse", f"{1000 + i}") for i in range(store.FIRST_BATCH + 50)]
    write = store._add_people

    def creator_dies(pipe: Any, cid: str, begin: int, chunk: list, due: int) -> None:
        if begin >= store.FIRST_BATCH:
            raise RuntimeError("creator gone")
        write(pipe, cid, begin, chunk, due)

    monkeypatch.setattr(store, "_add_people", creator_dies)
    with pytest.raises(RuntimeError):
        await store.create(db, CampaignSpec(messages={"fr": "x"}, attempts=1), people)
    cid = await store.latest(db)
    assert cid is not None
    s = Scheduler(db)
    now = int(time.time() * 1000)
    for _ in range(store.FIRST_BATCH):
        c = await s.claim(cid, now, lease_ms=LEASE, worker="w", asterisk="a")
        assert c is not None
        await s.finish(cid, c.pid, 1, "unavailable", now, worker="w", number="1", detail="")
    assert await s.claim(cid, now, lease_ms=LEASE, worker="w", asterisk="a") is None
    assert (await reports.report(db, cid))["status"] == "running", "50 never written"

    assert await store.repair_unwritten(db, now) == [], "its creator may still be writing"
    later = now + store.WRITING_ABANDONED_AFTER * 1000 + 1
    assert await store.repair_unwritten(db, later) == [cid]
    assert await store.repair_unwritten(db, later) == []
    report = await reports.report(db, cid)
    assert (report["status"], report["total"], report["pending"]) == ("done", 250, 0)
    incomplete = [e for e in await events(db, cid) if e["type"] == "incomplete"]
    assert [(e["written"], e["expected"]) for e in incomplete] == [("250", "300")]


async def test_a_campaign_written_whole_leaves_no_repair_to_do(db: aioredis.Redis) -> None:
    people = [person(f"q{i:03d}", "nurse", f"{2000 + i}") for i in range(store.FIRST_BATCH + 10)]
    cid = await store.create(db, CampaignSpec(messages={"fr": "x"}), people)
    assert await db.hget(f"ivr:campaign:{cid}", "writing") is None
    far = int(time.time() * 1000) + 10 * store.WRITING_ABANDONED_AFTER * 1000
    assert await store.repair_unwritten(db, far) == []
