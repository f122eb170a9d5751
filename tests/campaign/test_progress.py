"""A person's plan and where it stands (`ivr.campaign.progress`), from events and states alone."""

from __future__ import annotations

from ivr.campaign.progress import History, Queues, plan_of
from ivr.campaign.state import PersonState

PLAN = ("voice+sms", "voice")
NONE = Queues({}, {}, frozenset())


def rows(state: PersonState, history: History, queued: Queues = NONE) -> list[tuple]:
    return [(e["channel"], e["state"], e["result"], e["at"])
            for e in plan_of("a", PLAN, state, history, queued)]  # fmt: skip


def test_a_receipt_logged_before_its_sms_end_is_kept() -> None:
    history = History()
    history.extend([
        {"type": "attempt", "pid": "a", "step": "0", "outcome": "no_answer", "w": "w1",
         "t": "1000"},
        {"type": "sms_receipt", "pid": "a", "step": "0", "status": "delivered", "t": "3000"},
        {"type": "sms", "pid": "a", "step": "0", "result": "sent", "t": "2000"},
        # Not a step of the plan: an answer by SMS, a step-less event of an older release.
        {"type": "attempt", "pid": "a", "step": "1", "outcome": "available", "w": "sms",
         "t": "4000"},
        {"type": "attempt", "pid": "a", "outcome": "busy", "w": "w1", "t": "5000"},
    ])  # fmt: skip
    state = PersonState(status="q", round=1)
    assert rows(state, history, Queues({"a": 9000}, {}, frozenset())) == [
        ("voice", "done", "no_answer", 1.0), ("sms", "done", "delivered", 2.0),
        ("voice", "due", None, 9.0),
    ]  # fmt: skip
    # A receipt after the end, undelivered this time, keeps the time the SMS went.
    history.add({"type": "sms_receipt", "pid": "a", "step": "0", "status": "expired", "t": "6"})
    assert rows(state, history)[1] == ("sms", "done", "undelivered", 2.0)


def test_a_step_with_voice_and_sms_at_once() -> None:
    history = History()
    # The call of the first step is in progress; its SMS is being sent, then due elsewhere.
    calling = PersonState(status="c", round=0)
    assert rows(calling, history, Queues({}, {}, frozenset({"a:0"}))) == [
        ("voice", "calling", None, None), ("sms", "sending", None, None),
        ("voice", "planned", None, None),
    ]  # fmt: skip
    assert rows(calling, history, Queues({}, {"a:0": 4000}, frozenset()))[1] == (
        "sms", "due", None, 4.0,
    )  # fmt: skip
    # Answered on the first call: the SMS of that step was skipped, the rest is not needed.
    history.add({"type": "attempt", "pid": "a", "step": "0", "outcome": "available", "w": "w",
                 "t": "1000"})  # fmt: skip
    history.add({"type": "sms", "pid": "a", "step": "0", "result": "skipped", "t": "1500"})
    done = PersonState(status="d", round=0)
    assert rows(done, history) == [
        ("voice", "done", "available", 1.0), ("sms", "done", "skipped", 1.5),
        ("voice", "not_needed", None, None),
    ]  # fmt: skip
