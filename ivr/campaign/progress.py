"""Each person's delivery plan and where it stands, for the console and the API.

One entry per channel of each step of the campaign's plan (`ivr.campaign.plan`; a `voice+sms`
step gives two), in order, each in one `state`:

    done        the step ran: `result` is the last call's outcome (`no_answer`, `available`...)
                or the SMS's (`sent`, `failed`, `skipped`, `unknown`, and once its receipt came
                back `delivered` or `undelivered`); `at` when (Unix seconds)
    calling     the person's call of this step is in progress
    sending     their SMS of this step is being sent
    due         the step waits for its time, `at` (the plan's interval after the last step)
    planned     a later step, not due yet
    not_needed  the person answered (or their plan ended) before this step

What ran comes from the campaign's event log (`attempt` events carry their `step`, `sms` and
`sms_receipt` events theirs), the current step from the person's state, its due time from the
queues. An answer by SMS reply or on the callback line belongs to no step: the person's row
says how they answered (`answered_by`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis

from ivr.campaign import plan as plans
from ivr.campaign.scheduler import TIERS
from ivr.campaign.state import PersonState
from ivr.keys import campaign_key, sms_due_part, sms_sending_part

#: What an entry's `state` may be (see the module docstring).
STATES = ("done", "calling", "sending", "due", "planned", "not_needed")
#: An SMS step's result once its delivery receipt is back, indexed by "was it delivered".
_RECEIPTS = ("undelivered", "delivered")
#: `w` of an `attempt` event that is not a call of the plan: an SMS reply, the callback line.
_ANSWERS = frozenset({"sms", "callback"})


@dataclass
class History:
    """What each person's steps gave so far: (pid, step, channel) -> (result, ms)."""

    ran: dict[tuple[str, int, str], tuple[str, int]] = field(default_factory=dict)

    def add(self, event: dict[str, str]) -> None:
        """Take one event of the campaign's log (other types are ignored)."""
        kind, pid, step = event.get("type"), event.get("pid", ""), event.get("step", "")
        if not pid or not step.isdigit():
            return  # not about a step (or logged before events named their step)
        t = int(event.get("t") or 0)
        if kind == "attempt" and event.get("w") not in _ANSWERS:
            self.ran[(pid, int(step), plans.VOICE)] = (event.get("outcome", ""), t)
        elif kind == "sms":
            # A receipt may be logged before its SMS's end (the SMSC answers at once): it stays.
            had = self.ran.get((pid, int(step), plans.SMS), ("", t))[0]
            result = had if had in _RECEIPTS else event.get("result", "")
            self.ran[(pid, int(step), plans.SMS)] = (result, t)
        elif kind == "sms_receipt":
            sent = self.ran.get((pid, int(step), plans.SMS), ("", t))[1]
            status = _RECEIPTS[event.get("status") == "delivered"]
            self.ran[(pid, int(step), plans.SMS)] = (status, sent)

    def extend(self, events: Iterable[dict[str, str]]) -> None:
        for event in events:
            self.add(event)


@dataclass(frozen=True)
class Queues:
    """Due times (ms) in the campaign's queues: the voice tiers by pid, SMS by `pid:step`;
    the SMS steps being sent."""

    voice: dict[str, int]
    sms: dict[str, int]
    sending: frozenset[str]


async def queues(
    redis: Redis, cid: str, pids: Sequence[str] | None = None, steps: int = plans.MAX_STEPS
) -> Queues:
    """The due times of `pids` (everyone's when None: whole queues, read once) in a plan of
    `steps` steps."""
    voice_keys = [campaign_key(cid, tier) for tier in TIERS]
    sms_key, sending_key = campaign_key(cid, sms_due_part), campaign_key(cid, sms_sending_part)
    pipe = redis.pipeline(transaction=False)
    if pids is None:
        for key in (*voice_keys, sms_key, sending_key):
            pipe.zrange(key, 0, -1, withscores=True)
        *tiers, sms, sending = cast(list[list[tuple[str, float]]], await pipe.execute())
        voice = {str(m): int(s) for tier in tiers for m, s in tier}
        return Queues(
            voice, {str(m): int(s) for m, s in sms}, frozenset(str(m) for m, _ in sending)
        )
    if not pids:
        return Queues({}, {}, frozenset())
    # An SMS step's member is `pid:step`: the person's own steps are few.
    jobs = [f"{pid}:{k}" for pid in pids for k in range(steps)]
    for key in voice_keys:
        pipe.zmscore(key, list(pids))
    pipe.zmscore(sms_key, jobs)
    pipe.zmscore(sending_key, jobs)
    *scores, sms_scores, sending_scores = cast(list[list[float | None]], await pipe.execute())
    voice = {
        pid: int(score)
        for tier_scores in scores
        for pid, score in zip(pids, tier_scores, strict=True)
        if score is not None
    }
    return Queues(
        voice,
        {job: int(s) for job, s in zip(jobs, sms_scores, strict=True) if s is not None},
        frozenset(job for job, s in zip(jobs, sending_scores, strict=True) if s is not None),
    )


def plan_of(
    pid: str, steps: Sequence[str], state: PersonState, history: History, queued: Queues
) -> list[dict[str, Any]]:
    """Person `pid`'s plan, one entry per channel of each step (see the module docstring)."""
    out = []
    for k, step in enumerate(steps):
        for channel in (plans.VOICE, plans.SMS):
            if channel not in step:
                continue
            ran = history.ran.get((pid, k, channel))
            entry: dict[str, Any] = {"step": k, "channel": channel, "state": "planned",
                                     "result": None, "at": None}  # fmt: skip
            current = state.status != "d" and k == state.round
            if current and channel == plans.VOICE and state.status in ("q", "c"):
                # A step with several numbers goes on after its first call's outcome.
                entry["state"] = "calling" if state.status == "c" else "due"
                due = queued.voice.get(pid)
            elif ran is not None:
                entry.update(state="done", result=ran[0], at=ran[1] / 1000)
                due = None
            elif current and f"{pid}:{k}" in queued.sending:
                entry["state"], due = "sending", None
            elif current:
                entry["state"], due = "due", queued.sms.get(f"{pid}:{k}")
            else:
                due = None
                if state.status == "d" or k < state.round:
                    entry["state"] = "not_needed"
            if due is not None:
                entry["at"] = due / 1000
            out.append(entry)
    return out
