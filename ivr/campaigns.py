"""Campaigns: what to say, to whom, how many are needed; created, stopped and reported in Redis.

A campaign snapshots the people it targets when it starts (a later roster import does not
change it), with their backups kept aside for escalation. Its progress lives in the keys the
scheduler's scripts update; this module reads them for status and reports.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from redis.asyncio import Redis

from ivr import constants
from ivr.constants import campaign_key
from ivr.errors import IvrError
from ivr.roster import Person
from ivr.scheduler import TIERS

#: Outcomes a person can end with, in report order.
FINAL_OUTCOMES = (
    "available",
    "unavailable",
    "no_answer",
    "busy",
    "voicemail",
    "failed",
    "hung_up",
    "cancelled",
)
_ROLE = re.compile(r"[a-z0-9_]{1,40}")
#: The roster tag of the crisis cell: after pressing 1 they are bridged into its conference.
CRISIS_TAG = "crisis_cell"
#: People written with the campaign itself; the rest follow while the first calls ring.
FIRST_BATCH = 250


class CampaignError(IvrError):
    """A campaign cannot be created, found or changed as asked."""

    error_id = "campaign_error"
    exit_code = 2


@dataclass(frozen=True)
class Group:
    """More people to call when the alert is extended ("the next group"): roles and units of
    the roster, as a campaign's own targets are given (both empty: nobody more)."""

    name: str = ""
    roles: tuple[str, ...] = ()
    units: tuple[str, ...] = ()


@dataclass(frozen=True)
class CampaignSpec:
    """What the crisis manager asks for."""

    #: Message text per language ("fr", "en"); French is used for a language without one.
    messages: dict[str, str]
    #: Recorded messages per language, paths relative to IVR_AUDIO_DIR (`Speaker.import_audio`);
    #: a recording replaces the text-to-speech of its language.
    recordings: dict[str, str] = field(default_factory=dict)
    name: str = "plan blanc"
    #: Roles to call (empty: every role); units likewise.
    roles: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    #: role -> how many `available` answers are needed; roles without a quota: everyone.
    quotas: dict[str, int] = field(default_factory=dict)
    drill: bool = False
    ring_timeout: int = 30
    #: Rounds over each person's numbers; within a round, alternate numbers are tried at once.
    attempts: int = 3
    retry_delay: int = 300
    escalate: bool = True
    amd: bool = True
    ask_eta: bool = True
    #: Spoken on answering machines: the number staff should call back.
    callback_number: str = ""
    #: Seconds the IVR waits for a key after the menu, and times it plays the message.
    key_wait: int = 6
    max_tries: int = 3
    #: Calls in flight for a role with a quota: at most this many times the answers still
    #: needed (0: no cap; over-mobilisation is then bounded by the lines only).
    overcall: float = 2.0
    #: Groups called only when the alert is extended, one at a time, in this order.
    groups: tuple[Group, ...] = ()

    def validate(self) -> None:
        if not any(t.strip() for t in self.messages.values()) and not self.recordings:
            raise CampaignError("campaign: a message text or a recording is required")
        for language in (*self.messages, *self.recordings):
            if language not in ("fr", "en"):
                raise CampaignError(f"campaign: unknown message language {language!r}")
        for role, quota in self.quotas.items():
            if not _ROLE.fullmatch(role):
                raise CampaignError(f"campaign: quota role {role!r} is not a role name")
            if not 0 < quota <= 100_000:
                raise CampaignError(f"campaign: quota for {role} must be positive, got {quota}")
        if not 5 <= self.ring_timeout <= 300:
            raise CampaignError("campaign: ring timeout must be 5-300 s")
        if not 1 <= self.attempts <= 10:
            raise CampaignError("campaign: attempts must be 1-10")
        if not 0 <= self.retry_delay <= 86_400:
            raise CampaignError("campaign: retry delay must be 0-86400 s")
        if not 0 <= self.overcall <= 100:
            raise CampaignError("campaign: overcall must be 0-100")
        if not 2 <= self.key_wait <= 30 or not 1 <= self.max_tries <= 5:
            raise CampaignError("campaign: key wait must be 2-30 s and tries 1-5")
        if len(self.groups) > 9:
            raise CampaignError("campaign: at most 9 groups to extend to")
        for n, group in enumerate(self.groups, start=1):
            if not group.roles and not group.units:
                raise CampaignError(f"campaign: group {n} names no role and no unit")
        if self.callback_number:
            from ivr.numbers import normalize_number

            normalize_number(self.callback_number)


def person_record(person: Person) -> str:
    """The compact JSON a campaign keeps per person (read by the scheduler's Lua)."""
    record: dict[str, Any] = {"r": person.role, "p": list(person.phones), "n": person.name}
    if person.on_call:
        record["o"] = 1
    if person.backup:
        record["b"] = person.backup
    if person.unit:
        record["u"] = person.unit
    if person.language != "fr":
        record["l"] = person.language
    if person.tags:
        record["t"] = sorted(person.tags)
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def select(people: Iterable[Person], spec: CampaignSpec | Group) -> list[Person]:
    """The people a campaign (or one of its groups) targets: its roles and its units."""
    roles = {r.lower() for r in spec.roles}
    units = {u.lower() for u in spec.units}
    return [
        p
        for p in people
        if (not roles or p.role in roles) and (not units or p.unit.lower() in units)
    ]


async def create(redis: Redis, spec: CampaignSpec, people: list[Person]) -> str:
    """Create and start a campaign over `people` (the roster); return its id (a number)."""
    spec.validate()
    targets = select(people, spec)
    if not targets:
        raise CampaignError("campaign: nobody in the roster matches the targets")
    by_id = {p.id: p for p in people}
    target_ids = {p.id for p in targets}
    # On-call staff first (tier 0); within a tier, by due time, then by staff id.
    ordered = sorted(targets, key=lambda p: not p.on_call)
    cid = str(await redis.incr(constants.campaign_seq_key))
    now_ms = int(time.time() * 1000)
    meta: dict[str, str | int | float] = {
        "id": cid,
        # Ids restart at 1 in a new Redis; Asterisk's journal and quota flags outlive it.
        "uid": secrets.token_hex(4),
        "name": spec.name,
        "spec": json.dumps(asdict(spec), ensure_ascii=False),
        "status": "running",
        "drill": "1" if spec.drill else "0",
        "created_at": now_ms,
        "started_at": now_ms,
        "attempts": spec.attempts,
        "retry_delay_ms": spec.retry_delay * 1000,
        "escalate": "1" if spec.escalate else "0",
        "overcall": spec.overcall,
        "next_ix": len(ordered),
    }
    state_key, people_key = campaign_key(cid, "state"), campaign_key(cid, "people")

    def add_people(pipe: Any, start: int, chunk: list[Person]) -> None:
        pipe.hset(people_key, mapping={p.id: person_record(p) for p in chunk})
        index_numbers(pipe, cid, chunk)
        pipe.hset(
            state_key,
            mapping={
                p.id: json.dumps({"s": "q", "n": 0, "ph": 0, "rd": 0, "ix": start + i})
                for i, p in enumerate(chunk)
            },
        )
        for tier, members in (
            (TIERS[0], {p.id: now_ms for p in chunk if p.on_call}),
            (TIERS[1], {p.id: now_ms for p in chunk if not p.on_call}),
        ):
            if members:
                pipe.zadd(campaign_key(cid, tier), members)

    # The first people (on-call staff first) go in with the campaign itself, in one
    # transaction: the workers start calling at once, while the rest is written behind them
    # (15,000 people take ~300 ms to write; the first call must ring within 200 ms).
    first = FIRST_BATCH
    pipe = redis.pipeline(transaction=True)
    add_people(pipe, 0, ordered[:first])
    reserve = reserve_of(ordered, by_id, target_ids)
    if reserve:
        pipe.hset(campaign_key(cid, "reserve"), mapping=cast(Any, reserve))
        index_numbers(pipe, cid, [by_id[b] for b in reserve])
    if spec.quotas:
        pipe.hset(campaign_key(cid, "quota"), mapping=cast(Any, spec.quotas))
    # `open` counts everyone from the start, so the campaign cannot end before all are in.
    pipe.hset(campaign_key(cid, "counts"), mapping={"open": len(ordered), "total": len(ordered)})
    pipe.xadd(campaign_key(cid, "events"), {"type": "started", "t": now_ms})
    pipe.hset(campaign_key(cid), mapping=cast(Any, meta))
    pipe.zadd(constants.campaigns_key, {cid: now_ms})
    pipe.sadd(constants.active_campaigns_key, cid)
    pipe.publish(constants.wake_channel, f"start {cid}")
    await pipe.execute()
    rest = redis.pipeline(transaction=False)
    for start in range(first, len(ordered), 2000):
        add_people(rest, start, ordered[start : start + 2000])
        await rest.execute()
    return cid


def number_key(number: str) -> str:
    """How the callback line matches a caller id to a roster number: the last 9 digits (a
    French number without its 0 or +33), so "+33 6 12 34 56 78" finds "0612345678"."""
    return "".join(ch for ch in number if ch.isdigit())[-9:]


def reserve_of(
    targets: Iterable[Person], by_id: dict[str, Person], target_ids: set[str]
) -> dict[str, str]:
    """Backup id -> record, for the backups of `targets` who are not targets themselves: kept
    aside, called only if the person they back up cannot be reached."""
    return {
        p.backup: person_record(by_id[p.backup])
        for p in targets
        if p.backup and p.backup in by_id and p.backup not in target_ids
    }


def number_index(people: Iterable[Person]) -> dict[str, str]:
    """`number_key` of each of `people`'s numbers -> their staff id."""
    return {number_key(n): p.id for p in people for n in p.phones if number_key(n)}


def index_numbers(pipe: Any, cid: str, people: list[Person]) -> None:
    """Queue the writes of `people`'s numbers into the campaign's number -> staff id index."""
    mapping = number_index(people)
    if mapping:
        pipe.hset(campaign_key(cid, "numbers"), mapping=cast(Any, mapping))


async def find_by_number(redis: Redis, cid: str, number: str) -> str | None:
    """The staff id in campaign `cid` (targets and backups) who has phone `number`."""
    key = number_key(number)
    if not key:
        return None
    return cast(str | None, await redis.hget(campaign_key(cid, "numbers"), key))


async def get_meta(redis: Redis, cid: str) -> dict[str, str]:
    meta = cast(dict[str, str], await redis.hgetall(campaign_key(cid)))
    if not meta:
        raise CampaignError(f"campaign {cid} not found")
    return meta


async def stop(redis: Redis, cid: str) -> str:
    """Stop calling new people; calls in progress finish. Returns the new status."""
    meta = await get_meta(redis, cid)
    if meta["status"] != "running":
        return meta["status"]
    now_ms = int(time.time() * 1000)
    pipe = redis.pipeline(transaction=True)
    pipe.hset(campaign_key(cid), mapping={"status": "stopped", "stopped_at": now_ms})
    pipe.srem(constants.active_campaigns_key, cid)
    pipe.xadd(campaign_key(cid, "events"), {"type": "stopped", "t": now_ms})
    await pipe.execute()
    return "stopped"


async def active(redis: Redis) -> list[str]:
    ids = cast(set[str], await redis.smembers(constants.active_campaigns_key))
    return sorted(ids, key=int)


async def latest(redis: Redis) -> str | None:
    got = cast(list[str], await redis.zrevrange(constants.campaigns_key, 0, 0))
    return got[0] if got else None


async def report(redis: Redis, cid: str) -> dict[str, Any]:
    """The campaign's counts, per role against quota, and the arrival forecast."""
    meta = await get_meta(redis, cid)
    counts = {k: int(v) for k, v in (await redis.hgetall(campaign_key(cid, "counts"))).items()}
    quotas = {k: int(v) for k, v in (await redis.hgetall(campaign_key(cid, "quota"))).items()}
    roles: Counter[str] = Counter()
    async for _, record in redis.hscan_iter(campaign_key(cid, "people")):
        roles[json.loads(record)["r"]] += 1
    by_role: dict[str, Any] = {}
    for role in sorted(roles):
        entry: dict[str, Any] = {"total": roles[role]}
        for outcome in FINAL_OUTCOMES:
            entry[outcome] = counts.get(f"role:{role}:{outcome}", 0)
        entry["pending"] = roles[role] - sum(entry[o] for o in FINAL_OUTCOMES)
        entry["quota"] = quotas.get(role)
        entry["met"] = role in quotas and entry["available"] >= quotas[role]
        entry["arrivals"] = {b: counts.get(f"eta:{role}:{b}", 0) for b in ("30", "60", "90", "90+")}
        by_role[role] = entry
    total = counts.get("total", 0)
    result: dict[str, Any] = {
        "campaign": cid,
        "name": meta.get("name", ""),
        "status": meta["status"],
        "drill": meta.get("drill") == "1",
        "total": total,
    }
    for outcome in FINAL_OUTCOMES:
        result[outcome] = counts.get(f"final:{outcome}", 0)
    result["pending"] = counts.get("open", 0)
    result["in_flight"] = int(await redis.zcard(campaign_key(cid, "leases")))
    result["attempts"] = counts.get("attempts", 0)
    result["by_role"] = by_role
    result["forecast"] = {
        f"+{b}": sum(r["arrivals"][b] for r in by_role.values()) for b in ("30", "60", "90")
    }
    result["started_at"] = _seconds(meta.get("started_at"))
    result["finished_at"] = _seconds(meta.get("finished_at"))
    return result


def _seconds(ms: str | None) -> float | None:
    return int(ms) / 1000 if ms else None


async def attempts_csv(redis: Redis, cid: str) -> str:
    """One row per person with every attempt (number, outcome, time), from the event log."""
    import csv
    import io

    await get_meta(redis, cid)
    per_person: dict[str, list[str]] = {}
    start = "-"
    while True:
        batch = await redis.xrange(campaign_key(cid, "events"), min=start, count=5000)
        if not batch:
            break
        for _, raw in batch:
            fields = cast(dict[str, str], raw)
            if fields.get("type") == "attempt":
                when = time.strftime("%H:%M:%S", time.localtime(int(fields["t"]) / 1000))
                per_person.setdefault(fields["pid"], []).append(
                    f"{when} {fields['number']} {fields['outcome']}"
                )
        start = f"({batch[-1][0]!s}"
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["id", "name", "role", "unit", "outcome", "eta", "attempts"])
    async for pid, record in redis.hscan_iter(campaign_key(cid, "people")):
        person = json.loads(record)
        state = json.loads(await redis.hget(campaign_key(cid, "state"), pid) or "{}")
        writer.writerow(
            [
                pid,
                person.get("n", ""),
                person["r"],
                person.get("u", ""),
                state.get("o", "pending"),
                state.get("eta", ""),
                " | ".join(per_person.get(pid, [])),
            ]
        )
    return out.getvalue()
