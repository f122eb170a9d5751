"""Changes to a campaign under way: raising a role's quota, extending it to its next group
(or to roles and units given). Each is one Lua script, so it is atomic with the scheduler's
own steps (`ivr.campaign.scheduler`); a campaign that had ended resumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis.asyncio import Redis

from ivr import keys
from ivr.campaign import store
from ivr.campaign.scheduler import TIERS
from ivr.campaign.spec import CampaignError, CampaignSpec, Group, select
from ivr.campaign.store import CampaignConflict, CampaignNotFound, require
from ivr.keys import campaign_key
from ivr.staff.roster import Person

# A campaign that had ended runs again (people were put back in its queue): meta events now.
_RESUME = r"""
local function resume(meta, events, now)
  redis.call('HSET', meta, 'status', 'running')
  redis.call('HDEL', meta, 'finished_at')
  redis.call('SADD', '@ACTIVE@', redis.call('HGET', meta, 'id'))
  redis.call('XADD', events, '*', 'type', 'resumed', 't', now)
end
""".replace("@ACTIVE@", keys.active_campaigns_key)

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
-- Met again later, it is a new event for the director's call-back (ivr.campaign.recall).
redis.call('HINCRBY', KEYS[1], 'quota_raises', 1)
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
    now_ms = store.now_ms()
    names = [campaign_key(cid)] + [
        campaign_key(cid, part) for part in ("quota", "events", "state", "people", *TIERS, "counts")
    ]
    script = redis.register_script(_RAISE_QUOTA)
    got = [str(x) for x in await script(keys=names, args=[role, quota, now_ms])]
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
    await redis.publish(keys.wake_channel, f"raised {cid} {role}")
    return int(got[1])


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
    meta = await store.get_meta(redis, cid)
    groups = CampaignSpec.from_json(meta["spec"]).groups
    return list(groups[int(meta.get("extended", 0)) :])


async def newcomers(redis: Redis, cid: str, people: list[Person], group: Group) -> int:
    """How many people of `group` are not in campaign `cid` yet (what extending would add)."""
    ids = [p.id for p in select(people, group)]
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
    meta = await store.get_meta(redis, cid)
    if meta["status"] not in ("running", "done"):
        raise CampaignConflict(f"campaign {cid} is {meta['status']}: it cannot be extended")
    groups = CampaignSpec.from_json(meta["spec"]).groups
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
    chosen = select(people, group)
    by_id = {p.id: p for p in people}
    members = [[p.id, p.to_json(with_id=False), 1 if p.on_call else 0] for p in chosen]
    reserve = store.reserve_of(chosen, by_id, {p.id for p in chosen})
    # As at creation: the callback line finds the newcomers and their backups by number.
    numbers = store.number_index([*chosen, *(by_id[b] for b in reserve)])
    names = [campaign_key(cid)] + [
        campaign_key(cid, part)
        for part in ("state", "people", *TIERS, "counts", "events", "numbers", "reserve")
    ]
    script = redis.register_script(_EXTEND)
    args: list[str | int] = [store.now_ms(), index, label[:200], json.dumps(members),
                             json.dumps(numbers), json.dumps(reserve)]  # fmt: skip
    got = [str(x) for x in await script(keys=names, args=args)]
    if got[0] == "not_found":
        raise CampaignNotFound(f"campaign {cid} not found", campaign=cid)
    if got[0] == "not_running":
        raise CampaignConflict(f"campaign {cid} is {got[1]}: it cannot be extended")
    if got[0] == "conflict":
        raise CampaignConflict(f"campaign {cid}: extended by someone else meanwhile; try again")
    await redis.publish(keys.wake_channel, f"start {cid}")
    left = len(groups) - used - (1 if index >= 0 else 0)
    return Extension(int(got[1]), label, left)
