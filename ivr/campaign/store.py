"""Campaigns in Redis: created, found, stopped.

A campaign snapshots the people it targets when it starts (a later roster import does not
change it), with their backups kept aside for escalation. Its progress lives in the keys the
scheduler's scripts update (`ivr.campaign.scheduler`); `ivr.campaign.report` reads them.

Keys of campaign `<id>` (all under `ivr.keys.campaign_key`): the hash itself (meta: status,
spec, uid...), `people` (id -> `Person` JSON), `state` (id -> `PersonState` JSON), `due:0` and
`due:1` (the queue, on-call staff first), `leases` (calls in flight), `counts`, `quota`,
`events` (a stream), `numbers` (caller id -> staff id, for the callback line), `reserve`
(backups not among the targets) and `recalls` (the director's call-backs, `ivr.campaign.recall`).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from ivr import keys
from ivr.campaign import createscripts, scripts, upkeepscripts
from ivr.campaign.scheduler import TIERS
from ivr.campaign.spec import CampaignError, CampaignSpec, select
from ivr.campaign.state import PersonState
from ivr.keys import campaign_key, sms_due_part, sms_sending_part
from ivr.numbers import number_key
from ivr.staff.roster import Person

#: People written with the campaign itself; the rest follow while the first calls ring.
FIRST_BATCH = 250
#: People per later write: each is one Lua script (`createscripts.ADD_PEOPLE`), during which
#: Redis serves nobody else; 500 keeps the workers' first claims quick (bench/campaign.py
#: --first-ring: 2,000 made the first call ring ~100 ms later).
BATCH = 500
#: Seconds after its start that a campaign still being written counts as abandoned by its
#: creator (100,000 people take several seconds to write): `repair_unwritten`.
WRITING_ABANDONED_AFTER = 120
_ID = re.compile(r"[0-9]{1,18}")


class CampaignNotFound(CampaignError):
    """No campaign has this id."""

    error_id = "campaign_not_found"


class CampaignConflict(CampaignError):
    """The campaign is not in a state that allows the change (stopped, done)."""

    error_id = "campaign_not_running"


def now_ms() -> int:
    return int(time.time() * 1000)


async def create(
    redis: Redis,
    spec: CampaignSpec,
    people: list[Person],
    *,
    sms: bool = False,
    recall: str = "",
) -> str:
    """Create and start a campaign over `people` (the roster); return its id (a number).

    `sms`: the installation can send SMS (`Config.sms_ready`): a spec without a delivery plan
    gets the default one (voice, SMS, voice); without it, a plan that sends SMS is refused.
    `recall`: who to call back when its quotas are met or it ends (`RecallPlan.meta`; a
    campaign started by phone), written with it so that no event can come before it."""
    spec = spec.with_default_plan(sms)
    spec.validate()
    targets = select(people, spec)
    if not targets:
        raise CampaignError("campaign: nobody in the roster matches the targets")
    by_id = {p.id: p for p in people}
    # On-call staff first (tier 0); within a tier, by due time, then by staff id.
    ordered = sorted(targets, key=lambda p: not p.on_call)
    cid = await new_id(redis)
    started = now_ms()
    # The first people (on-call staff first) go in with the campaign itself, in one
    # transaction: the workers start calling at once, while the rest is written behind them
    # (15,000 people take about 1 s to write; the first call must ring within 200 ms).
    # Each step is safe to run twice (`ivr.campaign.createscripts`): through Sentinel, a
    # step whose reply was lost at a failover is sent again.
    pipe = redis.pipeline(transaction=True)
    _add_people(pipe, cid, 0, ordered[:FIRST_BATCH], started)
    reserve = reserve_of(ordered, by_id, {p.id for p in ordered})
    _index_numbers(pipe, cid, [by_id[b] for b in reserve])
    meta = _meta(cid, spec, started, len(ordered))
    if recall:
        meta["recall"] = recall
    if len(ordered) > FIRST_BATCH:
        # Until every person is written: a creator that stops before leaves this behind.
        meta["writing"] = len(ordered)
    # `open` counts everyone from the start, so the campaign cannot end before all are in.
    counts = {"open": len(ordered), "total": len(ordered)}
    _add_campaign(pipe, meta, spec.quotas, counts, reserve)
    await pipe.execute()
    rest = redis.pipeline(transaction=False)
    for start in range(FIRST_BATCH, len(ordered), BATCH):
        _add_people(rest, cid, start, ordered[start : start + BATCH], started)
        await rest.execute()
    if len(ordered) > FIRST_BATCH:
        await redis.hdel(campaign_key(cid), "writing")
    return cid


async def repair_unwritten(redis: Redis, now: int | None = None) -> list[str]:
    """End the writing of the running campaigns whose creator stopped (a crash, a site lost)
    before writing everyone, WRITING_ABANDONED_AFTER s after their start: the people written
    are called, the others are not counted (an `incomplete` event says how many). A worker
    does this when it starts and at each round of its upkeep. Returns the campaigns repaired."""
    now = now_ms() if now is None else now
    repaired = []
    for cid in await active(redis):
        meta = await redis.hmget(campaign_key(cid), ["writing", "started_at"])
        if meta[0] is None or now - int(meta[1] or 0) < WRITING_ABANDONED_AFTER * 1000:
            continue
        keys_ = [campaign_key(cid), *(campaign_key(cid, k) for k in ("state", "counts", "events"))]
        missing = await redis.eval(upkeepscripts.UNWRITTEN, len(keys_), *keys_, now)
        if int(missing) >= 0:
            repaired.append(cid)
    return repaired


def _meta(cid: str, spec: CampaignSpec, started: int, count: int) -> dict[str, str | int | float]:
    """The campaign's hash: its spec, and the fields the scheduler's scripts read."""
    return {
        "id": cid,
        # Ids restart at 1 in a new Redis; Asterisk's journal and quota flags outlive it.
        "uid": secrets.token_hex(4),
        "name": spec.name,
        "spec": spec.to_json(),
        "status": "running",
        "drill": "1" if spec.drill else "0",
        "created_at": started,
        "started_at": started,
        "attempts": spec.attempts,
        "retry_delay_ms": spec.retry_delay * 1000,
        "escalate": "1" if spec.escalate else "0",
        # The delivery plan the scheduler walks (`ivr.campaign.plan`).
        "plan": json.dumps(list(spec.steps())),
        "overcall": spec.overcall,
        "next_ix": count,
    }


def _add_people(pipe: Pipeline, cid: str, start: int, chunk: list[Person], due: int) -> None:
    """Queue the writes that put `chunk` (indexes from `start`) in the campaign's queue; a
    person already in it (the same write run before) is left as they are."""
    people: list[str | int] = [due]
    for i, p in enumerate(chunk):
        tier = 0 if p.on_call else 1
        people += [p.id, p.to_json(with_id=False), PersonState.queued(start + i), tier]
    tiers = (campaign_key(cid, tier) for tier in TIERS)
    pipe.eval(
        createscripts.ADD_PEOPLE,
        4,
        campaign_key(cid, "people"),
        campaign_key(cid, "state"),
        *tiers,
        *people,
    )
    _index_numbers(pipe, cid, chunk)


def _add_campaign(
    pipe: Pipeline,
    meta: Mapping[str, Any],
    quota: Mapping[str, Any],
    counts: Mapping[str, Any],
    reserve: Mapping[str, Any],
) -> None:
    """Queue the write of the campaign itself (meta, quota, counts, reserve), its `started`
    event and the workers' wake-up; a second run changes nothing."""
    cid, started = meta["id"], meta["started_at"]
    names = ("", "quota", "counts", "events", "reserve")
    pipe.eval(
        createscripts.CREATE,
        7,
        *(campaign_key(cid, part) for part in names),
        keys.campaigns_key,
        keys.active_campaigns_key,
        started,
        keys.wake_channel,
        f"start {cid}",
        json.dumps(
            {
                "meta": _strings(meta),
                "quota": _strings(quota),
                "counts": _strings(counts),
                "reserve": _strings(reserve),
            }
        ),
    )


async def new_id(redis: Redis) -> str:
    """A new campaign id (a number), taken once even when the command is sent twice."""
    token = keys.campaign_creation_prefix + secrets.token_hex(8)
    ttl = 3600
    return str(await redis.eval(createscripts.NEW_ID, 2, keys.campaign_seq_key, token, ttl))


def _strings(values: Mapping[str, Any]) -> dict[str, str]:
    """Hash values as redis-py writes them (floats by repr), for a script's HSET."""
    return {k: repr(v) if isinstance(v, float) else str(v) for k, v in values.items()}


def reserve_of(
    targets: Iterable[Person], by_id: Mapping[str, Person], target_ids: set[str]
) -> dict[str, str]:
    """Backup id -> record, for the backups of `targets` who are not targets themselves: kept
    aside, called only if the person they back up cannot be reached."""
    return {
        p.backup: by_id[p.backup].to_json(with_id=False)
        for p in targets
        if p.backup and p.backup in by_id and p.backup not in target_ids
    }


def number_index(people: Iterable[Person]) -> dict[str, str]:
    """`number_key` of each of `people`'s numbers -> their staff id."""
    return {
        number_key(n): p.id
        for p in people
        for n in (*p.phones, *([p.sms] if p.sms else []))
        if number_key(n)
    }


def _index_numbers(pipe: Pipeline, cid: str, people: list[Person]) -> None:
    """Queue the writes of `people`'s numbers into the campaign's number -> staff id index."""
    mapping = number_index(people)
    if mapping:
        pipe.hset(campaign_key(cid, "numbers"), mapping=mapping)  # type: ignore[arg-type]


async def find_by_number(redis: Redis, cid: str, number: str) -> str | None:
    """The staff id in campaign `cid` (targets and backups) who has phone `number`."""
    key = number_key(number)
    if not key:
        return None
    return cast(str | None, await redis.hget(campaign_key(cid, "numbers"), key))


async def require(redis: Redis, cid: str) -> None:
    """Raise CampaignNotFound unless campaign `cid` exists."""
    if not _ID.fullmatch(cid) or not await redis.exists(campaign_key(cid)):
        raise CampaignNotFound(f"campaign {cid} not found", campaign=cid)


async def get_meta(redis: Redis, cid: str) -> dict[str, str]:
    """The campaign's hash (status, name, uid, spec...); CampaignNotFound if there is none."""
    meta = cast(dict[str, str], await redis.hgetall(campaign_key(cid)))
    if not meta:
        raise CampaignNotFound(f"campaign {cid} not found", campaign=cid)
    return meta


async def get_spec(redis: Redis, cid: str) -> CampaignSpec:
    """What campaign `cid` was asked to do."""
    return CampaignSpec.from_json((await get_meta(redis, cid))["spec"])


async def get_person(redis: Redis, cid: str, pid: str) -> tuple[Person, PersonState] | None:
    """Person `pid` of campaign `cid` as the campaign keeps them, and where they stand."""
    pipe = redis.pipeline(transaction=False)
    pipe.hget(campaign_key(cid, "people"), pid)
    pipe.hget(campaign_key(cid, "state"), pid)
    record, state = cast(list[str | None], await pipe.execute())
    if record is None:
        return None
    return Person.from_json(record, pid), PersonState.decode(state)


async def stop(redis: Redis, cid: str, *, by: str = "", phone: str = "") -> str:
    """Stop calling new people; calls in progress finish, everyone still queued ends
    `cancelled`. Returns the campaign's status ("stopped", or how it had ended already).

    `by`, `phone`: the staff id who stopped it by phone, and that phone: the director who
    started it (if it is him), or that phone, is then not called back about its end
    (ivr.campaign.recall)."""
    return await _end(redis, cid, "stopped", "", by, phone)


async def fail(redis: Redis, cid: str, reason: str) -> str:
    """End a campaign that cannot run (its message cannot be rendered...) as `failed`, saying
    why: nobody waits for calls that will never come."""
    return await _end(redis, cid, "failed", reason[:500])


async def _end(
    redis: Redis, cid: str, status: str, reason: str, by: str = "", phone: str = ""
) -> str:
    await get_meta(redis, cid)
    parts = ("state", "people", *TIERS, "counts", "events", sms_due_part, sms_sending_part)
    names = [campaign_key(cid)] + [campaign_key(cid, part) for part in parts]
    script = redis.register_script(scripts.END)
    return str(await script(keys=names, args=[now_ms(), status, reason, by, phone]))


async def active(redis: Redis) -> list[str]:
    """The running campaigns' ids, oldest first."""
    ids = cast(set[str], await redis.smembers(keys.active_campaigns_key))
    return sorted(ids, key=int)


async def recent(redis: Redis, window_hours: int) -> list[str]:
    """Running campaigns, and those ended within `window_hours`; newest first. They still take
    answers (the callback line, SMS replies)."""
    since = (time.time() - window_hours * 3600) * 1000
    ids = cast(list[str], await redis.zrevrange(keys.campaigns_key, 0, 49))
    out = []
    for cid in ids:
        status, finished = await redis.hmget(campaign_key(cid), ["status", "finished_at"])
        if status == "running" or (status == "done" and int(finished or 0) >= since):
            out.append(cid)
    return out


async def latest(redis: Redis) -> str | None:
    """The newest campaign's id, if any."""
    got = cast(list[str], await redis.zrevrange(keys.campaigns_key, 0, 0))
    return got[0] if got else None
