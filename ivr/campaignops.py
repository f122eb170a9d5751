"""What the console reads and changes on campaigns beyond `ivr.campaigns`: the list of campaigns,
each person's state, the event log a page at a time, raising a role's quota mid-campaign, and
extending a campaign to its next group.

Reads the keys the scheduler's scripts write (see `ivr.scheduler` for the per-person state).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from ivr import campaigns, constants
from ivr.campaigns import CampaignError, Group
from ivr.constants import campaign_key
from ivr.report import CampaignData, render_html
from ivr.roster import Person
from ivr.scheduler import TIERS

_ID = re.compile(r"[0-9]{1,18}")
#: Per-person state letters of the scheduler, spelt out.
STATES = {"q": "queued", "c": "calling", "d": "done"}
#: Previous drills a drill report compares with, newest first.
MAX_DRILLS = 10


class CampaignNotFound(CampaignError):
    """No campaign has this id."""

    error_id = "campaign_not_found"


class CampaignConflict(CampaignError):
    """The campaign is not in a state that allows the change (stopped, done)."""

    error_id = "campaign_not_running"


async def exists(redis: Redis, cid: str) -> bool:
    return bool(await redis.exists(campaign_key(cid)))


async def require(redis: Redis, cid: str) -> None:
    """Raise CampaignNotFound unless campaign `cid` exists."""
    if not _ID.fullmatch(cid) or not await exists(redis, cid):
        raise CampaignNotFound(f"campaign {cid} not found", campaign=cid)


async def summaries(redis: Redis, *, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(number of campaigns, newest first from `offset`: id, name, status, drill, counts)."""
    total = int(await redis.zcard(constants.campaigns_key))
    ids = cast(
        list[str], await redis.zrevrange(constants.campaigns_key, offset, offset + limit - 1)
    )
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


async def people(redis: Redis, cid: str) -> list[dict[str, Any]]:
    """Everyone in the campaign, in calling order, with their state (no phone numbers)."""
    await require(redis, cid)
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(campaign_key(cid, "people"))
    pipe.hgetall(campaign_key(cid, "state"))
    records, states = cast(list[dict[str, str]], await pipe.execute())
    ordered = sorted(
        (int(state.get("ix", 0)), pid, state)
        for pid, state in ((pid, json.loads(raw)) for pid, raw in states.items())
    )
    return [person_row(pid, json.loads(records.get(pid, "{}")), state) for _, pid, state in ordered]


def person_row(pid: str, person: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """One person of a campaign as the API shows them, from their record and scheduler state."""
    finished = state.get("ft")
    return {
        "id": pid,
        "name": person.get("n", ""),
        "role": person.get("r", ""),
        "unit": person.get("u", ""),
        "on_call": bool(person.get("o")),
        "state": STATES.get(state.get("s", ""), "unknown"),
        "outcome": state.get("o"),
        "attempts": int(state.get("n", 0)),
        "eta_minutes": state.get("eta"),
        "finished_at": int(finished) / 1000 if finished else None,
        "backup_for": state.get("esc"),
    }


async def events(
    redis: Redis, cid: str, *, after: str | None = None, limit: int = 100
) -> list[dict[str, str]]:
    """The campaign's event log, oldest first, from just after the entry id `after`."""
    await require(redis, cid)
    start = "-" if after is None else f"({after}"
    got = await redis.xrange(campaign_key(cid, "events"), min=start, count=limit) or []
    return [{"id": str(entry_id), **cast(dict[str, str], fields)} for entry_id, fields in got]


# A campaign that had ended runs again (people were put back in its queue): meta events now.
_RESUME = r"""
local function resume(meta, events, now)
  redis.call('HSET', meta, 'status', 'running')
  redis.call('HDEL', meta, 'finished_at')
  redis.call('SADD', '@ACTIVE@', redis.call('HGET', meta, 'id'))
  redis.call('XADD', events, '*', 'type', 'resumed', 't', now)
end
""".replace("@ACTIVE@", constants.active_campaigns_key)

# KEYS: meta quota events state people due:0 due:1 counts ; ARGV: role new_quota now_ms
# People of the role that the old quota cancelled go back to the queue (the campaign runs again
# if it had ended): raising a met quota must call more people, not just move a number.
_RAISE_QUOTA = (
    _RESUME
    + r"""
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'not_found'} end
if status ~= 'running' and status ~= 'done' then return {'not_running', status} end
local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old then return {'no_quota'} end
if tonumber(ARGV[2]) <= tonumber(old) then return {'not_higher', old} end
local now = tonumber(ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[3], '*', 'type', 'quota', 'role', ARGV[1], 'quota', ARGV[2],
  'old', old, 't', now)
local revived = 0
local all = redis.call('HGETALL', KEYS[4])
for i = 1, #all, 2 do
  local st = cjson.decode(all[i + 1])
  if st.s == 'd' and st.o == 'cancelled' then
    local person = cjson.decode(redis.call('HGET', KEYS[5], all[i]))
    if person.r == ARGV[1] then
      st.s = 'q'; st.o = nil; st.ft = nil
      redis.call('HSET', KEYS[4], all[i], cjson.encode(st))
      local tier = (person.o == 1 or st.esc) and 6 or 7
      redis.call('ZADD', KEYS[tier], now, all[i])
      redis.call('HINCRBY', KEYS[8], 'final:cancelled', -1)
      redis.call('HINCRBY', KEYS[8], 'role:' .. ARGV[1] .. ':cancelled', -1)
      redis.call('HINCRBY', KEYS[8], 'open', 1)
      revived = revived + 1
    end
  end
end
if revived > 0 and status == 'done' then resume(KEYS[1], KEYS[3], now) end
return {'ok', old, revived}
"""
)


async def raise_quota(redis: Redis, cid: str, role: str, quota: int) -> int:
    """Raise `role`'s quota to `quota` in a running (or ended) campaign; return the old quota.

    Only a quota already set can be raised: a role without one is called in full already.
    People the old quota cancelled are queued again, and a campaign that had ended resumes.
    """
    await require(redis, cid)
    now_ms = int(time.time() * 1000)
    keys = [campaign_key(cid)] + [
        campaign_key(cid, part) for part in ("quota", "events", "state", "people", *TIERS, "counts")
    ]
    script = redis.register_script(_RAISE_QUOTA)
    got = [str(x) for x in await script(keys=keys, args=[role, quota, now_ms])]
    if got[0] == "not_found":
        raise CampaignNotFound(f"campaign {cid} not found", campaign=cid)
    if got[0] == "not_running":
        raise CampaignConflict(f"campaign {cid} is {got[1]}: its quotas cannot change")
    if got[0] == "no_quota":
        raise CampaignError(
            f"campaign {cid}: {role!r} has no quota (everyone of a role without one is called)"
        )
    if got[0] == "not_higher":
        raise CampaignError(f"campaign {cid}: quota for {role} is {got[1]}; raise it above that")
    # Workers hold back a role near its quota (the cap on calls in flight): wake them. The word
    # is not "quota", which tells them a quota was met.
    await redis.publish(constants.wake_channel, f"raised {cid} {role}")
    return int(got[1])


async def report_data(redis: Redis, cid: str) -> CampaignData:
    """Everything the after-action report of campaign `cid` is computed from."""
    await require(redis, cid)
    summary = await campaigns.report(redis, cid)
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(campaign_key(cid, "people"))
    pipe.hgetall(campaign_key(cid, "state"))
    records, states = cast(list[dict[str, str]], await pipe.execute())
    log: list[dict[str, str]] = []
    start = "-"
    while batch := await redis.xrange(campaign_key(cid, "events"), min=start, count=5000):
        log += [cast(dict[str, str], fields) for _, fields in batch]
        start = f"({batch[-1][0]!s}"
    return CampaignData(
        summary,
        log,
        {pid: json.loads(raw) for pid, raw in records.items()},
        {pid: json.loads(raw) for pid, raw in states.items()},
    )


async def report_html(redis: Redis, cid: str) -> str:
    """The HTML report of campaign `cid`; a drill is compared with the previous drills."""
    data = await report_data(redis, cid)
    drills: list[CampaignData] = []
    if data.summary["drill"]:
        # The campaigns created before this one, newest first.
        created = await redis.zscore(constants.campaigns_key, cid)
        ids = cast(
            list[str],
            await redis.zrevrangebyscore(constants.campaigns_key, f"({created}", "-inf"),
        )
        for other in ids:
            if await redis.hget(campaign_key(other), "drill") != "1":
                continue
            drills.append(await report_data(redis, other))
            if len(drills) == MAX_DRILLS:
                break
    return render_html(data, drills)


# KEYS: meta state people due:0 due:1 counts events numbers reserve
# ARGV: now_ms group_index (-1: not a group) label people_json numbers_json reserve_json
# people_json: [[pid, record, on_call 0/1], ...]. Everyone already in the campaign is skipped
# (target, backup called in, or added by an earlier extension): nobody is called twice.
_EXTEND = (
    _RESUME
    + r"""
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'not_found'} end
if status ~= 'running' and status ~= 'done' then return {'not_running', status} end
local group = tonumber(ARGV[2])
if group >= 0 then
  local used = tonumber(redis.call('HGET', KEYS[1], 'extended') or '0')
  if used ~= group then return {'conflict', used} end
  redis.call('HSET', KEYS[1], 'extended', used + 1)
end
local now = tonumber(ARGV[1])
local added = 0
for _, p in ipairs(cjson.decode(ARGV[4])) do
  local pid = p[1]
  if redis.call('HEXISTS', KEYS[2], pid) == 0 then
    local ix = redis.call('HINCRBY', KEYS[1], 'next_ix', 1) - 1
    redis.call('HSET', KEYS[3], pid, p[2])
    redis.call('HSET', KEYS[2], pid, cjson.encode({s = 'q', n = 0, ph = 0, rd = 0, ix = ix}))
    redis.call('ZADD', KEYS[p[3] == 1 and 4 or 5], now, pid)
    added = added + 1
  end
end
for number, pid in pairs(cjson.decode(ARGV[5])) do
  redis.call('HSETNX', KEYS[8], number, pid)
end
for pid, record in pairs(cjson.decode(ARGV[6])) do
  if redis.call('HEXISTS', KEYS[2], pid) == 0 then redis.call('HSETNX', KEYS[9], pid, record) end
end
if added > 0 then
  redis.call('HINCRBY', KEYS[6], 'open', added)
  redis.call('HINCRBY', KEYS[6], 'total', added)
  if status == 'done' then resume(KEYS[1], KEYS[7], now) end
end
redis.call('XADD', KEYS[7], '*', 'type', 'extended', 'group', ARGV[3], 'added', added, 't', now)
return {'ok', added}
"""
)


@dataclass(frozen=True)
class Extension:
    """What extending a campaign did."""

    #: People added (those already in the campaign are not counted).
    added: int
    #: The group's name, or a description of the targets given.
    label: str
    #: Groups of the campaign still to extend to, after this one.
    groups_left: int


async def groups_left(redis: Redis, cid: str) -> list[Group]:
    """The campaign's groups not extended to yet, in order."""
    meta = await campaigns.get_meta(redis, cid)
    groups = spec_groups(meta)
    return groups[int(meta.get("extended", 0)) :]


def spec_groups(meta: dict[str, str]) -> list[Group]:
    raw = json.loads(meta.get("spec", "{}")).get("groups") or []
    return [Group(g.get("name", ""), tuple(g["roles"]), tuple(g["units"])) for g in raw]


async def newcomers(redis: Redis, cid: str, people: list[Person], group: Group) -> int:
    """How many people of `group` are not in campaign `cid` yet (what extending would add)."""
    ids = [p.id for p in campaigns.select(people, group)]
    if not ids:
        return 0
    present = await redis.hmget(campaign_key(cid, "state"), ids)
    return sum(1 for state in present if state is None)


async def extend(
    redis: Redis, cid: str, people: list[Person], *, targets: Group | None = None
) -> Extension:
    """Add people of the roster `people` to campaign `cid`: its next group, or `targets`.

    Everyone already in the campaign is skipped. A campaign that had ended resumes; a stopped
    one cannot be extended.
    """
    await require(redis, cid)
    meta = await campaigns.get_meta(redis, cid)
    if meta["status"] not in ("running", "done"):
        raise CampaignConflict(f"campaign {cid} is {meta['status']}: it cannot be extended")
    groups = spec_groups(meta)
    used = int(meta.get("extended", 0))
    if targets is None:
        if used >= len(groups):
            raise CampaignError(f"campaign {cid}: no group left to extend to", campaign=cid)
        group, index = groups[used], used
        label = group.name or f"group {used + 1}"
    else:
        if not targets.roles and not targets.units:
            raise CampaignError("campaign: extend to which roles or units?")
        group, index = targets, -1
        label = targets.name or ", ".join((*targets.roles, *targets.units))
    chosen = campaigns.select(people, group)
    by_id = {p.id: p for p in people}
    members = [[p.id, campaigns.person_record(p), 1 if p.on_call else 0] for p in chosen]
    reserve = campaigns.reserve_of(chosen, by_id, {p.id for p in chosen})
    # As at creation: the callback line finds the newcomers and their backups by number.
    numbers = campaigns.number_index([*chosen, *(by_id[b] for b in reserve)])
    keys = [campaign_key(cid)] + [
        campaign_key(cid, part)
        for part in ("state", "people", *TIERS, "counts", "events", "numbers", "reserve")
    ]
    script = redis.register_script(_EXTEND)
    args: list[str | int] = [int(time.time() * 1000), index, label[:200], json.dumps(members),
                             json.dumps(numbers), json.dumps(reserve)]  # fmt: skip
    got = [str(x) for x in await script(keys=keys, args=args)]
    if got[0] == "not_found":
        raise CampaignNotFound(f"campaign {cid} not found", campaign=cid)
    if got[0] == "not_running":
        raise CampaignConflict(f"campaign {cid} is {got[1]}: it cannot be extended")
    if got[0] == "conflict":
        raise CampaignConflict(f"campaign {cid}: extended by someone else meanwhile; try again")
    await redis.publish(constants.wake_channel, f"start {cid}")
    left = len(groups) - used - (1 if index >= 0 else 0)
    return Extension(int(got[1]), label, left)
