"""What the console reads and changes on campaigns beyond `ivr.campaigns`: the list of campaigns,
each person's state, the event log a page at a time, and raising a role's quota mid-campaign.

Reads the keys the scheduler's scripts write (see `ivr.scheduler` for the per-person state).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, cast

from redis.asyncio import Redis

from ivr import campaigns, constants
from ivr.campaigns import CampaignError
from ivr.constants import campaign_key
from ivr.report import CampaignData, render_html
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


# KEYS: meta quota events state people due:0 due:1 counts ; ARGV: role new_quota now_ms
# People of the role that the old quota cancelled go back to the queue (the campaign runs again
# if it had ended): raising a met quota must call more people, not just move a number.
_RAISE_QUOTA = r"""
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
if revived > 0 and status == 'done' then
  redis.call('HSET', KEYS[1], 'status', 'running')
  redis.call('HDEL', KEYS[1], 'finished_at')
  redis.call('SADD', '@ACTIVE@', redis.call('HGET', KEYS[1], 'id'))
  redis.call('XADD', KEYS[3], '*', 'type', 'resumed', 't', now)
end
return {'ok', old, revived}
""".replace("@ACTIVE@", constants.active_campaigns_key)


async def raise_quota(redis: Redis, cid: str, role: str, quota: int) -> int:
    """Raise `role`'s quota to `quota` in a running (or ended) campaign; return the old quota.

    Only a quota already set can be raised: a role without one is called in full already.
    People the old quota cancelled are queued again, and a campaign that had ended resumes.
    """
    await require(redis, cid)
    now_ms = int(time.time() * 1000)
    keys = [campaign_key(cid)] + [
        campaign_key(cid, part)
        for part in ("quota", "events", "state", "people", *TIERS, "counts")
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
