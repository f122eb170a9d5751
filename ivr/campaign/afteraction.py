"""After-action and drill reports: the mobilisation curve, time to quota, and the HTML page.

Pure functions over what a campaign left in Redis (`CampaignData`, read by
`ivr.campaign.report.report_data`): no I/O here, so the numbers a regional health agency reads are
tested from synthetic event lists. The page is one self-contained HTML file (inline CSS and
SVG, no script, no external resource) that opens offline, prints, and reads on a projector.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ivr.campaign.state import PersonState
from ivr.staff.roster import Person

#: Milestones reported, in percent of a quota.
MILESTONES = (25, 50, 75, 100)


@dataclass(frozen=True)
class CampaignData:
    """One campaign as the report needs it."""

    #: `ivr.campaign.report.report()` of the campaign.
    summary: dict[str, Any]
    #: Its event log, oldest first (fields as strings, `t` in ms).
    events: list[dict[str, str]]
    #: person id -> the person as the campaign keeps them.
    people: dict[str, Person] = field(default_factory=dict)
    #: person id -> where they stand (outcome, when, minutes to arrival).
    states: dict[str, PersonState] = field(default_factory=dict)

    @cached_property
    def start_ms(self) -> int:
        """When the campaign started (ms): its `started` event, else its metadata."""
        for event in self.events:
            if event.get("type") == "started":
                return int(event["t"])
        started = self.summary.get("started_at")
        if started is not None:
            return int(float(started) * 1000)
        return int(self.events[0]["t"]) if self.events else 0

    def minutes(self, t_ms: int | str) -> float:
        """Minutes since the campaign started."""
        return (int(t_ms) - self.start_ms) / 60_000


@dataclass(frozen=True)
class Curve:
    """Cumulative counts over minutes since the start: (minute, count) steps."""

    #: `available` answers.
    available: list[tuple[float, int]]
    #: People expected on site (answer time + the arrival minutes they keyed).
    on_site: list[tuple[float, int]]


def available_answers(data: CampaignData) -> list[tuple[float, str]]:
    """(minute, person id) of each person's `available` answer, in time order."""
    first: dict[str, float] = {}
    for e in data.events:
        if e.get("type") == "final" and e.get("outcome") == "available":
            first.setdefault(e.get("pid", ""), data.minutes(e["t"]))
    return sorted((minute, pid) for pid, minute in first.items())


def curve(data: CampaignData) -> Curve:
    """The mobilisation curve: available answers, and arrivals forecast from the minutes keyed
    after answering (counted at answer time + those minutes)."""
    answers = available_answers(data)
    answered_at = {pid: minute for minute, pid in answers}
    arrivals = sorted(
        answered_at.get(e.get("pid", ""), data.minutes(e["t"])) + minutes
        for e in data.events
        if e.get("type") == "eta" and (minutes := _number(e.get("minutes"))) is not None
    )
    return Curve(
        available=[(minute, i + 1) for i, (minute, _) in enumerate(answers)],
        on_site=[(minute, i + 1) for i, minute in enumerate(arrivals)],
    )


def _number(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def quotas(data: CampaignData) -> dict[str, int]:
    """role -> quota, for the roles that have one."""
    return {
        role: int(entry["quota"])
        for role, entry in data.summary.get("by_role", {}).items()
        if entry.get("quota")
    }


def time_to_quota(data: CampaignData) -> dict[str, dict[int, float | None]]:
    """Minutes to reach 25/50/75/100% of each role's quota and of the total (key `""`).

    Towards the total, answers beyond a role's own quota do not count: 30 doctors do not make
    up for missing nurses. None: not reached.
    """
    wanted = quotas(data)
    by_role: dict[str, list[float]] = {role: [] for role in wanted}
    total: list[float] = []
    for minute, pid in available_answers(data):
        person = data.people.get(pid)
        role = person.role if person is not None else ""
        if role in by_role and len(by_role[role]) < wanted[role]:
            by_role[role].append(minute)
            total.append(minute)
    out = {role: _milestones(times, wanted[role]) for role, times in by_role.items()}
    if wanted:
        out[""] = _milestones(total, sum(wanted.values()))
    return out


def _milestones(times: list[float], quota: int) -> dict[int, float | None]:
    out: dict[int, float | None] = {}
    for pct in MILESTONES:
        needed = max(1, math.ceil(quota * pct / 100))
        out[pct] = times[needed - 1] if len(times) >= needed else None
    return out


def timeline(data: CampaignData) -> list[tuple[float, str]]:
    """(minute, what happened) for the campaign's lifecycle events."""
    out: list[tuple[float, str]] = []
    for e in data.events:
        kind = e.get("type")
        if kind == "started":
            text = "Campaign started"
        elif kind == "quota_met":
            text = f"Quota met: {e.get('role', '')}"
        elif kind == "quota":
            text = f"Quota raised: {e.get('role', '')} {e.get('old', '')} → {e.get('quota', '')}"
        elif kind == "stopped":
            text = "Calling stopped"
        elif kind == "resumed":
            text = "Campaign resumed (quota raised)"
        elif kind == "escalated":
            text = f"Backup {e.get('backup', '')} called for {e.get('pid', '')}"
        elif kind == "done":
            text = "Campaign done"
        else:
            continue
        out.append((data.minutes(e["t"]), text))
    return out


def per_unit(data: CampaignData) -> dict[str, Counter[str]]:
    """unit -> counts: `total`, each final outcome, `pending`."""
    out: dict[str, Counter[str]] = {}
    for pid, person in data.people.items():
        counts = out.setdefault(person.unit or "(none)", Counter())
        counts["total"] += 1
        state = data.states.get(pid)
        counts[str(state.outcome) if state is not None and state.outcome else "pending"] += 1
    return dict(sorted(out.items()))


def answers(data: CampaignData) -> list[dict[str, Any]]:
    """Who answered what and when, in answer order."""
    rows = []
    for pid, state in data.states.items():
        if not state.answered:
            continue
        person = data.people.get(pid)
        finished = state.finished_ms
        rows.append(
            {
                "id": pid,
                "name": person.name if person else "",
                "role": person.role if person else "",
                "unit": person.unit if person else "",
                "answer": str(state.outcome),
                "by": state.answered_by,
                "at_ms": finished,
                "minute": data.minutes(finished) if finished else None,
                "eta": state.eta,
            }
        )
    rows.sort(key=lambda r: (r["at_ms"] is None, r["at_ms"] or 0, r["id"]))
    return rows


def drill_row(data: CampaignData) -> dict[str, Any]:
    """One line of the drill comparison."""
    total = time_to_quota(data).get("", {})
    return {
        "campaign": data.summary.get("campaign", ""),
        "name": data.summary.get("name", ""),
        "started_at": data.summary.get("started_at"),
        "total": data.summary.get("total", 0),
        "available": data.summary.get("available", 0),
        "t50": total.get(50),
        "t100": total.get(100),
    }
