"""What a campaign reads out as: its counts against quota, each person's state, its event log,
the attempts as CSV, and the data of its after-action report.

Reads the keys the scheduler's scripts write (`ivr.campaign.scheduler`); changes nothing.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, cast

from redis.asyncio import Redis

from ivr import keys, spreadsheet
from ivr.campaign import progress
from ivr.campaign.afteraction import CampaignData
from ivr.campaign.reportpage import render_html
from ivr.campaign.state import PersonState
from ivr.campaign.store import CampaignNotFound, get_meta, get_spec, require
from ivr.keys import campaign_key
from ivr.outcomes import Outcome
from ivr.staff.roster import Person

#: A campaign's report: the JSON document `ivr.api.schemas.REPORT` describes (counts per outcome,
#: per role against quota, arrivals forecast); the console, the CLI and the report line read it.
Report = dict[str, Any]
#: What became of SMS steps, and the answers given by SMS (`ivr.campaign.scripts`).
SMS_RESULTS = ("sent", "failed", "skipped", "unknown", "delivered", "undelivered", "answered")
#: What became of the mails (`ivr.sms.mail`).
MAIL_RESULTS = ("sent", "failed")
#: Previous drills a drill report compares with, newest first.
MAX_DRILLS = 10
#: Arrival buckets (minutes) of the forecast.
ARRIVALS = ("30", "60", "90", "90+")


async def report(redis: Redis, cid: str) -> Report:
    """The campaign's counts, per role against quota, and the arrival forecast (the JSON
    document `ivr.api.schemas.REPORT` describes)."""
    # One snapshot (MULTI): "over, nothing in flight" must come with the counts of that moment
    # (an arrival time is counted before its call's lease goes).
    pipe = redis.pipeline(transaction=True)
    pipe.hgetall(campaign_key(cid))
    pipe.hgetall(campaign_key(cid, "counts"))
    pipe.hgetall(campaign_key(cid, "quota"))
    pipe.zcard(campaign_key(cid, "leases"))
    meta, raw_counts, raw_quotas, in_flight = await pipe.execute()
    if not meta:
        raise CampaignNotFound(f"campaign {cid} not found", campaign=cid)
    counts = {k: int(v) for k, v in raw_counts.items()}
    quotas = {k: int(v) for k, v in raw_quotas.items()}
    roles: Counter[str] = Counter()
    async for pid, record in redis.hscan_iter(campaign_key(cid, "people")):
        roles[Person.from_json(record, pid).role] += 1
    by_role = {role: _role_entry(role, roles[role], counts, quotas) for role in sorted(roles)}
    result: Report = {
        "campaign": cid,
        "name": meta.get("name", ""),
        "status": meta["status"],
        "drill": meta.get("drill") == "1",
        "total": counts.get("total", 0),
    }
    for outcome in Outcome:
        result[outcome] = counts.get(f"final:{outcome}", 0)
    result["pending"] = counts.get("open", 0)
    result["in_flight"] = int(in_flight)
    result["attempts"] = counts.get("attempts", 0)
    result["by_role"] = by_role
    result["forecast"] = {
        f"+{b}": sum(r["arrivals"][b] for r in by_role.values()) for b in ARRIVALS[:3]
    }
    result["plan"] = (
        json.loads(meta["plan"]) if meta.get("plan") else ["voice"] * int(meta.get("attempts", 1))
    )
    result["sms"] = {k: counts.get(f"sms:{k}", 0) for k in SMS_RESULTS}
    result["mail"] = {k: counts.get(f"mail:{k}", 0) for k in MAIL_RESULTS}
    result["reason"] = meta.get("reason")
    result["started_at"] = _seconds(meta.get("started_at"))
    result["finished_at"] = _seconds(meta.get("finished_at"))
    return result


def _role_entry(
    role: str, people: int, counts: dict[str, int], quotas: dict[str, int]
) -> dict[str, Any]:
    entry: dict[str, Any] = {"total": people}
    for outcome in Outcome:
        entry[outcome] = counts.get(f"role:{role}:{outcome}", 0)
    entry["pending"] = people - sum(entry[o] for o in Outcome)
    entry["quota"] = quotas.get(role)
    entry["met"] = role in quotas and entry[Outcome.AVAILABLE] >= quotas[role]
    entry["arrivals"] = {b: counts.get(f"eta:{role}:{b}", 0) for b in ARRIVALS}
    return entry


def _seconds(ms: str | None) -> float | None:
    return int(ms) / 1000 if ms else None


async def _event_log(redis: Redis, cid: str) -> AsyncIterator[dict[str, str]]:
    """The campaign's whole event log, oldest first, a batch at a time."""
    start = "-"
    while batch := await redis.xrange(campaign_key(cid, "events"), min=start, count=5000):
        for _, fields in batch:
            yield cast(dict[str, str], fields)
        start = f"({batch[-1][0]!s}"


async def attempts_csv(redis: Redis, cid: str) -> str:
    """One row per person with every attempt (number, outcome, time), from the event log."""
    await get_meta(redis, cid)
    per_person: dict[str, list[str]] = {}
    async for fields in _event_log(redis, cid):
        kind = fields.get("type")
        if kind == "attempt":
            what = f"{fields['number']} {fields['outcome']}"
        elif kind == "sms" and fields.get("pid"):
            what = f"SMS {fields.get('result', '')}"
        else:
            continue
        when = time.strftime("%H:%M:%S", time.localtime(int(fields["t"]) / 1000))
        per_person.setdefault(fields["pid"], []).append(f"{when} {what}")
    rows: list[list[object]] = [
        ["id", "name", "role", "unit", "outcome", "answered_by", "eta", "attempts"]
    ]
    for pid, (person, state) in (await _people_and_states(redis, cid)).items():
        rows.append(
            [
                pid,
                person.name,
                person.role,
                person.unit,
                state.outcome or "pending",
                state.answered_by or "",
                "" if state.eta is None else state.eta,
                " | ".join(per_person.get(pid, [])),
            ]
        )
    return spreadsheet.write(rows)


async def summaries(redis: Redis, *, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(number of campaigns, newest first from `offset`: id, name, status, drill, counts)."""
    total = int(await redis.zcard(keys.campaigns_key))
    ids = cast(list[str], await redis.zrevrange(keys.campaigns_key, offset, offset + limit - 1))
    pipe = redis.pipeline(transaction=False)
    for cid in ids:
        pipe.hmget(campaign_key(cid), ["name", "status", "drill", "created_at", "finished_at"])
        pipe.hmget(campaign_key(cid, "counts"), ["total", "open", "final:available"])
    got = await pipe.execute() if ids else []
    out = []
    for i, cid in enumerate(ids):
        name, status, drill, created, finished = got[2 * i]
        people, pending, available = got[2 * i + 1]
        out.append(
            {
                "id": cid,
                "name": name or "",
                "status": status or "unknown",
                "drill": drill == "1",
                "created_at": int(created) / 1000 if created else None,
                "finished_at": int(finished) / 1000 if finished else None,
                "total": int(people or 0),
                "pending": int(pending or 0),
                "available": int(available or 0),
            }
        )
    return total, out


async def _people_and_states(redis: Redis, cid: str) -> dict[str, tuple[Person, PersonState]]:
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(campaign_key(cid, "people"))
    pipe.hgetall(campaign_key(cid, "state"))
    records, states = cast(list[dict[str, str]], await pipe.execute())
    return {
        pid: (Person.from_json(records[pid], pid), PersonState.decode(raw))
        for pid, raw in states.items()
        if pid in records
    }


async def people(
    redis: Redis, cid: str, history: progress.History | None = None
) -> list[dict[str, Any]]:
    """Everyone in the campaign, in calling order, with their state and plan (no phone
    numbers). `history`: the event log read so far (`progress.History`), else read here."""
    await require(redis, cid)
    if history is None:
        history = progress.History()
        history.extend([fields async for fields in _event_log(redis, cid)])
    steps = (await get_spec(redis, cid)).steps()
    everyone = await _people_and_states(redis, cid)
    queued = await progress.queues(redis, cid)
    ordered = sorted(everyone.items(), key=lambda item: (item[1][1].index, item[0]))
    return [
        person_row(person, state, progress.plan_of(pid, steps, state, history, queued))
        for pid, (person, state) in ordered
    ]


def person_row(person: Person, state: PersonState, plan: list[dict[str, Any]]) -> dict[str, Any]:
    """One person of a campaign as the API shows them (`ivr.api.schemas.CAMPAIGN_PERSON`),
    with their plan and where it stands (`ivr.campaign.progress.plan_of`)."""
    return {
        "id": person.id,
        "name": person.name,
        "role": person.role,
        "unit": person.unit,
        "on_call": person.on_call,
        "state": state.status_name,
        "outcome": state.outcome,
        "attempts": state.attempts,
        "eta_minutes": state.eta,
        "finished_at": state.finished_ms / 1000 if state.finished_ms else None,
        "backup_for": state.backup_for,
        "step": state.round,
        "answered_by": state.answered_by,
        "plan": plan,
    }


async def events(
    redis: Redis, cid: str, *, after: str | None = None, limit: int = 100
) -> list[dict[str, str]]:
    """The campaign's event log, oldest first, from just after the entry id `after`."""
    await require(redis, cid)
    start = "-" if after is None else f"({after}"
    got = await redis.xrange(campaign_key(cid, "events"), min=start, count=limit) or []
    return [{"id": str(entry_id), **cast(dict[str, str], fields)} for entry_id, fields in got]


async def report_data(redis: Redis, cid: str) -> CampaignData:
    """Everything the after-action report of campaign `cid` is computed from."""
    await require(redis, cid)
    summary = await report(redis, cid)
    everyone = await _people_and_states(redis, cid)
    log = [fields async for fields in _event_log(redis, cid)]
    return CampaignData(
        summary,
        log,
        {pid: person for pid, (person, _) in everyone.items()},
        {pid: state for pid, (_, state) in everyone.items()},
    )


async def report_html(redis: Redis, cid: str) -> str:
    """The HTML report of campaign `cid`; a drill is compared with the previous drills."""
    data = await report_data(redis, cid)
    drills: list[CampaignData] = []
    if data.summary["drill"]:
        # The campaigns created before this one, newest first.
        created = await redis.zscore(keys.campaigns_key, cid)
        ids = cast(
            list[str], await redis.zrevrangebyscore(keys.campaigns_key, f"({created}", "-inf")
        )
        for other in ids:
            if await redis.hget(campaign_key(other), "drill") != "1":
                continue
            drills.append(await report_data(redis, other))
            if len(drills) == MAX_DRILLS:
                break
    return render_html(data, drills)
