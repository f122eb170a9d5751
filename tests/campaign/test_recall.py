"""The director's call-back in Redis: the scenario setting, the events noted by the scheduler's
scripts, the claim with its lease, the retries (no Asterisk needed; tests/lines/test_recall.py
places the calls over SIP)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ivr.access import audit
from ivr.campaign import ops, store
from ivr.campaign import recall as recalls
from ivr.campaign.recall import RecallPlan
from ivr.campaign.scenarios import load_scenarios
from ivr.campaign.scheduler import Scheduler
from ivr.errors import ConfigError
from ivr.keys import recalls_due_key
from tests.campaign.test_scheduler import NOW, claim, start
from tests.campaigntools import events, person

DIRECTOR = "0611223344"
PLAN = RecallPlan(numbers=("0699887766",), attempts=2, retry_delay=60)
SCENARIO = '[[scenario]]\nkey = 1\nname = "x"\nmessage.fr = "m"\n'


def test_a_scenario_calls_the_director_back_unless_told_not_to(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        SCENARIO + 'director_callback = { numbers = ["06 99 88 77 66"], on = ["end"] }\n'
        '[[scenario]]\nkey = 2\nname = "y"\nmessage.fr = "m"\ndirector_callback = false\n'
        '[[scenario]]\nkey = 3\nname = "z"\nmessage.fr = "m"\n',
        encoding="utf-8",
    )
    listed, off, default = load_scenarios(path)
    assert listed.recall == RecallPlan(numbers=("0699887766",), on=("end",))
    assert off.recall.meta(DIRECTOR, "d0") == "", "disabled: nobody is called back"
    assert default.recall == RecallPlan(), "by default: the director, on quota and on end"
    assert default.recall.meta("", "d0") == "", "a withheld caller id and no number: nobody"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ('"yes"', "true, false, or a table"),
        ('{ numbers = ["06 11 & 22"] }', "characters not allowed in a number: '&'"),
        ('{ numbers = "0611" }', "numbers must be a list of texts"),
        ('{ numbers = ["1", "2", "3", "4", "5"] }', "at most 4 numbers"),
        ('{ on = ["quota", "start"] }', 'on must list "quota" and/or "end"'),
        ("{ attempts = 0 }", "attempts must be 1-10, got 0"),
        ("{ retry_delay = 7200 }", "retry_delay must be 0-3600 s, got 7200"),
        ("{ colour = 1 }", "unknown field"),
    ],
)
def test_a_bad_director_callback_is_named(tmp_path: Path, value: str, error: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f"{SCENARIO}director_callback = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=error) as caught:
        load_scenarios(path)
    assert "scenario 1: director_callback" in str(caught.value)


def test_the_plan_calls_each_number_once_and_skips_a_bad_caller_id() -> None:
    plan = RecallPlan(numbers=("+33611223344", "0699887766"))
    stored = json.loads(plan.meta(DIRECTOR, "d0"))
    # The director's number and the same one in international form are one phone.
    assert stored["numbers"] == [DIRECTOR, "0699887766"]
    assert stored["director"] == "d0" and stored["on"] == {"quota": True, "end": True}
    assert json.loads(plan.meta("sip:abc", "d0"))["numbers"] == ["+33611223344", "0699887766"]


async def _finish(db: aioredis.Redis, cid: str, outcome: str, now: int = NOW) -> list[str]:
    scheduler = Scheduler(db)
    c = await claim(scheduler, cid, now)
    assert c is not None
    return await scheduler.finish(  # type: ignore[union-attr]
        cid, c.pid, c.attempt, outcome, now, worker="w", number=c.number, detail=""
    )


async def _campaign(db: aioredis.Redis, plan: RecallPlan = PLAN, **spec: object) -> str:
    # Called in this order (by staff id).
    people = [person("n0", "nurse", "1"), person("n1", "nurse", "2"), person("x0", "doctor", "3")]
    cid, _ = await start(db, people, **spec)
    # As the trigger line does it: the plan goes in with the campaign.
    await db.hset(f"ivr:campaign:{cid}", "recall", plan.meta(DIRECTOR, "d0"))
    return cid


async def test_every_quota_met_calls_the_director_and_the_listed_numbers_once(
    db: aioredis.Redis,
) -> None:
    cid = await _campaign(db, quotas={"nurse": 1, "doctor": 1})
    assert await _finish(db, cid, "available") == ["quota_met", "nurse"]
    assert await recalls.states(db, cid) == {}, "one quota of two: nobody is called yet"
    assert await _finish(db, cid, "available") == ["quota_met", "doctor"]
    states = await recalls.states(db, cid)
    assert sorted(states) == [f"quota:{DIRECTOR}", "quota:0699887766"]
    assert all(s["s"] == "p" and s["n"] == 0 for s in states.values())
    due = await db.zrange(recalls_due_key, 0, -1)
    assert sorted(due) == [f"{cid}:quota:{DIRECTOR}", f"{cid}:quota:0699887766"]
    logged = [e for e in await audit.entries(db) if e["action"] == "recall.due"]
    assert sorted((e["who"], e["target"], e["details"]["number"]) for e in logged) == [
        ("system", cid, DIRECTOR),
        ("system", cid, "0699887766"),
    ]


async def test_claim_lease_retry_and_give_up(db: aioredis.Redis) -> None:
    cid = await _campaign(db, quotas={"nurse": 1})
    await _finish(db, cid, "available")
    first = await recalls.claim(db, NOW, lease_ms=90_000, worker="w1")
    second = await recalls.claim(db, NOW, lease_ms=90_000, worker="w2")
    assert first is not None and second is not None
    assert {first.number, second.number} == {DIRECTOR, "0699887766"}
    assert (first.attempt, first.event) == (1, "quota")
    assert await recalls.claim(db, NOW, lease_ms=90_000, worker="w3") is None, "both leased"
    # w1 dies mid-ring: its call-back is due again when its lease ends, for another worker.
    taken = await recalls.claim(db, NOW + 90_000, lease_ms=90_000, worker="w3")
    assert taken is not None and taken.number == first.number and taken.attempt == 2
    # Not answered: due again after the scenario's retry delay, until the attempts are spent.
    assert await recalls.finish(db, second, "busy", NOW) == ["retry", str(NOW + 60_000)]
    assert await recalls.claim(db, NOW + 59_999, lease_ms=1000, worker="w2") is None
    again = await recalls.claim(db, NOW + 60_000, lease_ms=1000, worker="w2")
    assert again is not None and again.attempt == 2
    assert await recalls.finish(db, again, "no_answer", NOW + 61_000) == ["gave_up"]
    # The dead worker's late result changes nothing; the flow marks the answer of any attempt.
    assert await recalls.finish(db, first, "no_answer", NOW) == ["stale", "p"]
    # The flow of attempt 2 marks it answered when picked up; the dialer's result is stale.
    assert await recalls.finish(db, taken, "answered", NOW, flow=True) == ["done"]
    assert await recalls.finish(db, taken, "answered", NOW) == ["stale", "d"]
    states = await recalls.states(db, cid)
    assert states[f"quota:{first.number}"]["s"] == "d"
    assert states["quota:0699887766"] == {**states["quota:0699887766"], "s": "x", "n": 2}
    assert await db.zcard(recalls_due_key) == 0


async def test_picked_up_but_not_heard_is_due_again(db: aioredis.Redis) -> None:
    cid = await _campaign(db, RecallPlan(attempts=3, retry_delay=60), quotas={"nurse": 1})
    await _finish(db, cid, "available")
    first = await recalls.claim(db, NOW, lease_ms=90_000, worker="w1")
    assert first is not None
    assert await recalls.finish(db, first, "answered", NOW, flow=True) == ["done"]
    # A voicemail box took it: the flow says so, the call-back is due again after the delay.
    assert await recalls.finish(db, first, "unheard", NOW, flow=True) == [
        "retry",
        str(NOW + 60_000),
    ]
    assert await recalls.finish(db, first, "answered", NOW) == ["stale", "p"], "flow settled it"
    again = await recalls.claim(db, NOW + 60_000, lease_ms=90_000, worker="w2")
    assert again is not None and again.attempt == 2
    assert await recalls.finish(db, again, "answered", NOW, flow=True) == ["done"]
    assert (await recalls.states(db, cid))[f"quota:{DIRECTOR}"]["s"] == "d"


async def test_the_end_is_told_unless_the_director_stopped_it_himself(db: aioredis.Redis) -> None:
    plan = RecallPlan(on=("end",))
    mine = await _campaign(db, plan)
    assert await store.stop(db, mine, by="d0") == "stopped"
    assert await recalls.states(db, mine) == {}, "he stopped it: he knows"
    other = await _campaign(db, plan)
    assert await store.stop(db, other, by="n0") == "stopped"
    assert list(await recalls.states(db, other)) == [f"end:{DIRECTOR}"]
    # Stopped by a deputy from a listed phone: the director is told, not that phone.
    listed = await _campaign(db, RecallPlan(numbers=("0699887766",), on=("end",)))
    assert await store.stop(db, listed, by="n1", phone="+33 6 99 88 77 66") == "stopped"
    assert list(await recalls.states(db, listed)) == [f"end:{DIRECTOR}"]
    done = await _campaign(db, plan)
    for _ in range(3):
        await _finish(db, done, "unavailable")
    assert list(await recalls.states(db, done)) == [f"end:{DIRECTOR}"]


async def test_an_end_while_the_quota_call_is_pending_is_one_call(db: aioredis.Redis) -> None:
    cid = await _campaign(db, RecallPlan(), quotas={"nurse": 1})
    await _finish(db, cid, "available")
    await store.stop(db, cid)
    # The quota call, made when the director answers, says it ended: no second call for it.
    assert list(await recalls.states(db, cid)) == [f"quota:{DIRECTOR}"]


async def test_a_quota_raised_and_met_again_is_a_new_event(db: aioredis.Redis) -> None:
    cid = await _campaign(db, RecallPlan(on=("quota",)), quotas={"nurse": 1})
    await _finish(db, cid, "available")
    await ops.raise_quota(db, cid, "nurse", 2)
    await _finish(db, cid, "available")
    assert sorted(await recalls.states(db, cid)) == [f"quota2:{DIRECTOR}", f"quota:{DIRECTOR}"]


async def test_an_escalation_does_not_end_the_campaign_for_an_instant(db: aioredis.Redis) -> None:
    people = [person("n0", "nurse", "1", backup="b0"), person("b0", "doctor", "2")]
    cid, _ = await start(db, people, roles=("nurse",), attempts=1)
    await db.hset(f"ivr:campaign:{cid}", "recall", RecallPlan().meta(DIRECTOR, "d0"))
    assert await _finish(db, cid, "no_answer") == ["escalated", "b0"]
    assert "done" not in [e["type"] for e in await events(db, cid)]
    assert await recalls.states(db, cid) == {}, "still running: the backup is being called"
    await _finish(db, cid, "unavailable")
    assert list(await recalls.states(db, cid)) == [f"end:{DIRECTOR}"]


async def test_a_campaign_not_started_by_phone_calls_nobody(db: aioredis.Redis) -> None:
    cid, _ = await start(db, [person("n0", "nurse", "1")], quotas={"nurse": 1})
    await _finish(db, cid, "available")
    assert await recalls.states(db, cid) == {}
    assert await db.zcard(recalls_due_key) == 0
