"""The director called back, over real SIP: SIPp answering phones stand for the director's
phone and the scenario's other numbers; the service calls them through the sandbox Asterisk
(`Local/<port><number>@ivr-test-hospital`, a hospital's own context in front of the SIP trunk),
and the flow speaks the report line's summary and menu.

The staff side is played by the scheduler itself (a claim and a result per answer): what is
under test is what follows the last quota met or the end, not the alert calls (tests/dialer/).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.campaign import recall as recalls
from ivr.campaign import report as reports
from ivr.campaign import store
from ivr.campaign.recall import Recall, RecallPlan
from ivr.campaign.scenarios import load_scenarios
from ivr.campaign.scheduler import Scheduler
from ivr.campaign.spec import CampaignSpec
from ivr.dialer.alerter import Alerter
from ivr.dialer.recall import RecallDialer
from ivr.dialer.settings import WorkerSettings
from ivr.dialer.worker import DialerWorker
from ivr.keys import recalls_due_key
from ivr.staff.roster import RosterStore
from ivr.voice import speech
from tests.campaigntools import wait_events
from tests.lines.linephone import PIN, Phone, launch
from tests.phonerobot import On
from tests.sipp import Hangup, Keys, free_udp_port

pytestmark = pytest.mark.integration

#: How the service reaches the answering phones: the SIP port, then the number.
HOSPITAL = "Local/{number}@ivr-test-hospital"
#: A director who takes the news: 1 to hear it again, then hangs up.
HEARD = [On("report", Keys("1")), On("report", Hangup())]


class Attempts:
    """The call-back attempts the dialers report (call-back, outcome, what `finish` said)."""

    def __init__(self) -> None:
        self.seen: list[tuple[Recall, str, list[str]]] = []
        self._queue: asyncio.Queue[tuple[Recall, str, list[str]]] = asyncio.Queue()

    def __call__(self, recall: Recall, outcome: str, got: list[str]) -> None:
        self.seen.append((recall, outcome, got))
        self._queue.put_nowait((recall, outcome, got))

    async def next(self, timeout: float = 60) -> tuple[Recall, str, list[str]]:
        return await asyncio.wait_for(self._queue.get(), timeout)


@contextlib.asynccontextmanager
async def recalling(
    phone: Phone, attempts: Attempts, name: str = "w1"
) -> AsyncIterator[RecallDialer]:
    """A worker's call-back dialer on the test's Redis and lines, until the block ends."""
    stop = asyncio.Event()
    async with Alerter(phone.config) as alerter:
        dialer = RecallDialer(
            alerter,
            phone.db,
            WorkerSettings(name),
            agi_url=phone.hub.agi_url,
            dial_template=HOSPITAL,
            ring_timeout=10,
            observer=attempts,
        )
        task = asyncio.create_task(dialer.run(stop))
        try:
            yield dialer
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)


@contextlib.asynccontextmanager
async def dialing(phone: Phone) -> AsyncIterator[None]:
    """A dialer worker calling the campaigns' staff (the sandbox's simulated phones)."""
    stop = asyncio.Event()
    async with Alerter(phone.config) as alerter:
        worker = DialerWorker(alerter, phone.db, WorkerSettings("staff", capacity=10))
        task = asyncio.create_task(worker.run(stop))
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)


async def _campaign(phone: Phone, director: str, plan: RecallPlan) -> str:
    """A campaign of the roster's nurses (quota 1), started by phone by d0 from `director`."""
    await phone.roster()
    people = await RosterStore(phone.db).load()
    spec = CampaignSpec(messages={"fr": "Alerte."}, roles=("nurse",), quotas={"nurse": 1})
    return await store.create(phone.db, spec, people, recall=plan.meta(director, "d0"))


async def _nurse_answers(phone: Phone, cid: str) -> list[str]:
    """The next nurse of `cid` presses 1 (as the scheduler sees an alert call)."""
    scheduler = Scheduler(phone.db)
    c = await scheduler.claim(cid, store.now_ms(), lease_ms=30_000, worker="t", asterisk="t")
    assert c is not None
    return await scheduler.finish(cid, c.pid, c.attempt, "available", store.now_ms(),
                                  worker="t", number=c.number, detail="")  # fmt: skip


async def test_quota_met_the_director_hears_the_summary_repeats_it_and_stops(
    phone: Phone,
) -> None:
    """1 repeats (no PIN); 2 asks the PIN first. He stopped it himself: no call for the end."""
    await phone.lines.context.pins.set("d0", PIN)
    attempts = Attempts()
    script = [
        On("report", Keys("1")),
        On("report", Keys("2")),
        On("pin", Keys(f"{PIN}#")),
        On("stop_confirm", Keys("1")),
    ]
    async with phone.hub.answer("recall", script, dtmf="info") as director:
        cid = await _campaign(phone, director.caller, RecallPlan())
        async with recalling(phone, attempts) as dialer:
            await dialer.alerter.link.wait_up(10)  # the dialer looks for call-backs now
            assert await _nurse_answers(phone, cid) == ["quota_met", "nurse"]
            met = time.monotonic()
            report, before = await reports.report(phone.db, cid), time.time()
            recall, outcome, got = await attempts.next()
            await director.finished()
    assert director.seen == ["report", "report", "pin", "stop_confirm"]
    # From the last quota met to the director's phone speaking the news (a poll of at most
    # 0.5 s, the call, the intro and summary rendered): seconds, not minutes.
    print(f"quota met -> call-back menu: {director.at['report'] - met:.2f} s")
    assert director.at["report"] - met < 10
    assert (recall.event, recall.number, recall.attempt) == ("quota", director.caller, 1)
    # The flow marked it answered the moment he picked up; the dialer found it so.
    assert (outcome, got) == ("answered", ["stale", "d"])
    assert speech.recall_intro(cid, "quota", "fr") == director.said[0]
    # The report line's own summary, made afresh for the repeat.
    summaries = director.said[1:3]
    same = {speech.summary(report, "fr", now=t, role_labels={}) for t in (before, time.time())}
    assert set(summaries) <= same, (summaries, same)
    assert "Une personne disponible" in summaries[0] and "Objectif atteint" in summaries[0]
    assert speech.stopped(cid, "fr") in director.said
    assert (await store.get_meta(phone.db, cid))["status"] == "stopped"
    [stopped] = await phone.audit("campaign.stop")
    assert stopped["who"] == "phone:d0"
    states = await recalls.states(phone.db, cid)
    assert list(states) == [f"quota:{director.caller}"], "no call about the end he caused"
    quota = states[f"quota:{director.caller}"]
    assert (quota["s"], quota["n"]) == ("d", 1)
    [answered] = await phone.audit("recall.answered")
    assert answered["who"] == f"phone:{director.caller}" and answered["target"] == cid
    [placed] = await phone.audit("recall.call")
    assert placed["details"]["outcome"] == "answered" and placed["who"] == "worker:w1"


async def test_not_answered_or_not_heard_is_retried_until_heard(phone: Phone) -> None:
    """Busy (486) the first time; picked up and hung up at once the second (no key, the summary
    not over: a voicemail box or a pocket); the third time a key is pressed. Each call after
    the scenario's retry delay, at the same number."""
    attempts = Attempts()
    async with phone.hub.answer("recall", reject=486) as busy:
        cid = await _campaign(phone, busy.caller, RecallPlan(attempts=3, retry_delay=2))
        async with recalling(phone, attempts):
            await _nurse_answers(phone, cid)
            first, outcome, got = await attempts.next()
        await busy.finished()
    assert (first.attempt, outcome, got[0]) == (1, "busy", "retry")
    # The same phone, free again: a worker (another one) calls it when the retry is due.
    async with (
        phone.hub.answer("recall", [On("report", Hangup())], port=busy.port) as pocket,
        recalling(phone, attempts, name="w2"),
    ):
        second, outcome, got = await attempts.next()
        await pocket.finished()
    # Picked up (so the dialer saw an answer), but the flow put it back in line.
    assert (second.attempt, outcome, got) == (2, "answered", ["stale", "p"])
    [unheard] = await phone.audit("recall.unheard")
    assert unheard["details"]["next"] == "retry"
    async with phone.hub.answer("recall", HEARD, port=busy.port, dtmf="inband") as director:
        assert director.caller == busy.caller
        async with recalling(phone, attempts, name="w3"):
            third, outcome, got = await attempts.next()
            await director.finished()
    assert (third.attempt, outcome, got) == (3, "answered", ["stale", "d"])
    assert director.seen == ["report", "report"], "in-band keys heard on the call-back too"
    assert speech.recall_intro(cid, "quota", "fr") in director.said
    placed = sorted(await phone.audit("recall.call"), key=lambda e: e["at"])
    assert [e["details"]["outcome"] for e in placed] == ["busy", "answered", "answered"]
    answered = sorted(e["at"] for e in await phone.audit("recall.answered"))
    assert answered[1] - answered[0] >= 2, "not before the retry delay"
    assert (await recalls.states(phone.db, cid))[f"quota:{busy.caller}"]["s"] == "d"
    assert await phone.db.zcard(recalls_due_key) == 0


async def test_two_workers_racing_place_one_call(phone: Phone) -> None:
    """Both workers look for call-backs when the quota is met; one calls, once."""
    attempts = Attempts()
    async with phone.hub.answer("recall", HEARD) as director:
        cid = await _campaign(phone, director.caller, RecallPlan())
        async with recalling(phone, attempts, "w1"), recalling(phone, attempts, "w2"):
            await _nurse_answers(phone, cid)
            await attempts.next()
            await director.finished()
            # Done and off the due list: neither worker can place it again.
            assert await phone.db.zcard(recalls_due_key) == 0
    assert len(attempts.seen) == 1, attempts.seen
    assert (await recalls.states(phone.db, cid))[f"quota:{director.caller}"]["n"] == 1
    assert len(await phone.audit("recall.call")) == 1
    assert len(await phone.audit("recall.answered")) == 1


async def test_the_end_calls_the_director_and_the_scenario_numbers(phone: Phone) -> None:
    """Stopped from the console: the director and the scenario's other number are called, each
    told it is over."""
    attempts = Attempts()
    script = HEARD
    async with (
        phone.hub.answer("recall", script) as director,
        phone.hub.answer("recall", script, suffix="0699887766") as deputy,
    ):
        plan = RecallPlan(numbers=(deputy.caller,), on=("end",))
        cid = await _campaign(phone, director.caller, plan)
        async with recalling(phone, attempts):
            await _nurse_answers(phone, cid)  # the quota: not an event this scenario tells
            assert await store.stop(phone.db, cid) == "stopped"
            got = {(await attempts.next())[0].number for _ in range(2)}
            await director.finished()
            await deputy.finished()
    assert got == {director.caller, deputy.caller}
    for robot in (director, deputy):
        assert robot.seen == ["report", "report"]
        assert speech.recall_intro(cid, "end", "fr") == robot.said[0]
    states = await recalls.states(phone.db, cid)
    assert sorted(states) == sorted(f"end:{n}" for n in (director.caller, deputy.caller))


async def test_trigger_line_keeps_the_director_and_a_scenario_can_turn_it_off(
    phone: Phone, tmp_path: Path
) -> None:
    """End to end: the director triggers two campaigns over SIP; a dialer worker calls the
    nurses (simulated phones that press 1) until each quota is met; the phone he triggered from
    is called back for the one whose scenario keeps the call-back, not for the one with
    `director_callback = false`."""
    path = tmp_path / "scenarios.toml"
    scenario = 'name = "{}"\nmessage.fr = "Alerte."\nroles = ["nurse"]\nquotas = {{ nurse = 1 }}\n'
    path.write_text(
        "[[scenario]]\nkey = 1\n" + scenario.format("avec rappel")
        + 'director_callback = { on = ["quota"] }\n'
        + "[[scenario]]\nkey = 2\n" + scenario.format("sans rappel")
        + "director_callback = false\n",
        encoding="utf-8",
    )  # fmt: skip
    phone.lines.context.scenarios = load_scenarios(path)
    await phone.roster()
    await phone.lines.context.pins.set("d0", PIN)
    port = free_udp_port()
    caller = f"{port:05d}0611223344"
    started = []
    for key in ("2", "1"):
        async with phone.hub.call("trigger", caller, launch(key)) as robot:
            await robot.until("launched")
        await robot.finished()
        started.append(await store.latest(phone.db))
    off, on = started
    assert off is not None and on is not None
    assert "recall" not in await store.get_meta(phone.db, off)
    [start] = [e for e in await phone.audit("campaign.start") if e["target"] == on]
    assert start["details"]["call_back"] == [caller]
    attempts = Attempts()
    async with phone.hub.answer("recall", HEARD, port=port) as director:
        assert director.caller == caller
        async with recalling(phone, attempts), dialing(phone):
            recall, outcome, _ = await attempts.next()
            await director.finished()
            await wait_events(phone.db, off, "quota_met", 1)
    assert (recall.campaign, recall.number, outcome) == (on, caller, "answered")
    assert [a[0].campaign for a in attempts.seen] == [on]
    assert await recalls.states(phone.db, off) == {}, "turned off: nobody is called"
    assert (await reports.report(phone.db, on))["by_role"]["nurse"]["met"]


async def test_a_worker_dead_mid_ring_is_taken_over_after_its_lease(phone: Phone) -> None:
    """A worker claimed the call-back and died: another calls once the lease has run out."""
    attempts = Attempts()
    async with phone.hub.answer("recall", HEARD) as director:
        cid = await _campaign(phone, director.caller, RecallPlan())
        await _nurse_answers(phone, cid)
        dead = await recalls.claim(phone.db, store.now_ms(), lease_ms=1500, worker="dead")
        assert dead is not None and dead.attempt == 1
        lease_end = time.monotonic() + 1.5
        async with recalling(phone, attempts, "alive"):
            taken, outcome, _ = await attempts.next()
            await director.finished()
    assert (taken.attempt, outcome) == (2, "answered")
    [placed] = await phone.audit("recall.call")
    assert placed["who"] == "worker:alive"
    assert director.at["report"] >= lease_end, "not called again before the lease ran out"
    # The dead worker's result, if it ever came, would change nothing.
    assert await recalls.finish(phone.db, dead, "no_answer", store.now_ms()) == ["stale", "d"]
