"""The director called back: when every quota of a campaign started by phone is met, or when it
ends, the director who started it (and the numbers its scenario lists) get a call with the
report line's spoken summary and menu (`ivr.lines.recall`, placed by `ivr.dialer.recall`).

A scenario says who and when (`director_callback` in the scenario file, `RecallPlan`); the
trigger line stores the plan in the campaign's hash (`recall`: numbers, events, attempts,
retry delay, the director's staff id) when it starts the campaign.

Events are noted inside the scheduler's own Lua scripts (`NOTE`, part of
`ivr.campaign.scripts.COMMON`), in the same atomic step that meets the last quota or ends the
campaign: no event is missed if a worker dies just after, and none is noted twice. Each
(campaign, event, number) is one entry of the campaign's `recalls` hash, created once
(HSETNX), and one member of `ivr.keys.recalls_due_key` scored by when it is due:

- `claim` takes the first due one, counts the attempt and pushes its score to the end of a
  lease (a worker that dies mid-call leaves it due again then, for another worker);
- `finish` records an attempt: answered (done), or not (due again after the retry delay, until
  the attempts are spent). The call's flow marks it answered itself the moment the director
  picks up, so the call counts even if the worker that placed it dies during the conversation;
  and back to not answered if nobody listened after all (no key, and hung up before the end
  of the first summary and menu, or the menus ran out: a voicemail box).

Events: `quota` (every quota met; `quota2`... after a quota was raised and met again) and `end`
(the campaign done, stopped or failed). No `end` call when the director stopped it himself by
phone (he knows), nor to the phone it was stopped from, nor while the `quota` call to that
number is still to be answered (it tells the news: its summary is made when he answers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from ivr import limits
from ivr.access.audit import MAX_ENTRIES
from ivr.errors import ConfigError, InvalidNumberError
from ivr.keys import audit_key, campaign_key, campaign_prefix, recalls_due_key
from ivr.numbers import normalize_number, number_key
from ivr.replication import replication_of

#: What may call the director back.
EVENTS = ("quota", "end")
#: Calls to one number for one event (unanswered, busy, failed), and seconds between them.
ATTEMPTS = 3
RETRY_DELAY = 120
RETRY_LIMITS = limits.Range(0, 3600, "s")
#: Most numbers called back per scenario (the director's and its listed ones).
MAX_NUMBERS = 5

# Called in the scheduler's scripts (ivr.campaign.scripts.COMMON) where a campaign meets its
# last quota or ends. `by`: the staff id who stopped it by phone ('' otherwise).
NOTE = r"""
local function all_quotas_met(counts, quota)
  local wanted = redis.call('HGETALL', quota)
  if #wanted == 0 then return false end
  for i = 1, #wanted, 2 do
    local got = tonumber(redis.call('HGET', counts, 'role:' .. wanted[i] .. ':available') or '0')
    if got < tonumber(wanted[i + 1]) then return false end
  end
  return true
end
local function national(number)
  local digits = string.gsub(number, '%D', '')
  return string.sub(digits, -9)
end
local function recall_add(meta, plan, event, now, skip)
  local calls = meta .. ':recalls'
  local quota = 'quota'
  local round = tonumber(redis.call('HGET', meta, 'quota_raises') or '0')
  if round > 0 then quota = 'quota' .. (round + 1) end
  if event == 'quota' then event = quota end
  local cid = redis.call('HGET', meta, 'id')
  for _, number in ipairs(plan.numbers) do
    -- The phone the campaign was stopped from knows it ended (ivr.numbers.number_key's match).
    local pending = skip ~= '' and national(number) == skip
    if event == 'end' and not pending then
      local q = redis.call('HGET', calls, quota .. ':' .. number)
      pending = q ~= false and cjson.decode(q).s == 'p'
    end
    if not pending and redis.call('HSETNX', calls, event .. ':' .. number,
        cjson.encode({s = 'p', n = 0, t0 = now})) == 1 then
      redis.call('ZADD', '@DUE@', now, cid .. ':' .. event .. ':' .. number)
      -- In the audit log as ivr.access.audit writes it: why the phone is about to ring.
      redis.call('XADD', '@AUDIT@', 'MAXLEN', '~', @MAX@, '*', 'who', 'system', 'role', '',
        'action', 'recall.due', 'target', cid,
        'details', cjson.encode({event = event, number = number}), 't', now)
    end
  end
end
local function recall_note(meta, event, now, by, phone)
  local raw = redis.call('HGET', meta, 'recall')
  if not raw then return end
  local plan = cjson.decode(raw)
  if event == 'end' and plan.on.quota and all_quotas_met(meta .. ':counts', meta .. ':quota') then
    -- The answer that met the last quota ended the campaign too: the quota call tells both.
    recall_add(meta, plan, 'quota', now, '')
  end
  if not plan.on[event] then return end
  if event == 'end' and by ~= '' and by == plan.director then return end
  recall_add(meta, plan, event, now, national(phone or ''))
end
"""
for _name, _value in (("@DUE@", recalls_due_key), ("@AUDIT@", audit_key),
                      ("@MAX@", str(MAX_ENTRIES))):  # fmt: skip
    NOTE = NOTE.replace(_name, _value)

# KEYS: due ; ARGV: now_ms lease_ms worker campaign_prefix
_CLAIM = r"""
local now = tonumber(ARGV[1])
for _ = 1, 20 do
  local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
  if #items == 0 then return false end
  local member = items[1]
  local cid, name = string.match(member, '^([^:]+):(.+)$')
  local calls = ARGV[4] .. (cid or '') .. ':recalls'
  local raw = cid and redis.call('HGET', calls, name)
  local st = raw and cjson.decode(raw)
  if st and st.s == 'p' then
    st.n = st.n + 1; st.w = ARGV[3]
    redis.call('HSET', calls, name, cjson.encode(st))
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), member)
    return {member, st.n}
  end
  redis.call('ZREM', KEYS[1], member)
end
return false
"""

# KEYS: due recalls meta ; ARGV: member name attempt outcome now_ms by ('flow' or 'dialer')
# The call's flow settles the attempt it runs in (st.h: the last such attempt): the dialer's
# own result for that attempt, when the call is over, is then stale.
_FINISH = r"""
local raw = redis.call('HGET', KEYS[2], ARGV[2])
if not raw then return {'unknown'} end
local st = cjson.decode(raw)
local attempt = tonumber(ARGV[3])
local flow = ARGV[6] == 'flow'
if not flow and st.h and st.h >= attempt then return {'stale', st.s} end
if flow and ARGV[4] == 'unheard' then
  -- Picked up (marked done then) but nobody listened: a voicemail box, a hang-up at once.
  if st.s ~= 'd' then return {'stale', st.s} end
  st.s = 'p'
elseif st.s ~= 'p' or (not flow and st.n ~= attempt) then
  return {'stale', st.s}
end
if flow then st.h = math.max(st.h or 0, attempt) end
local now = tonumber(ARGV[5])
st.o = ARGV[4]; st.t = now
if ARGV[4] == 'answered' then
  st.s = 'd'
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(st))
  return {'done'}
end
local plan = cjson.decode(redis.call('HGET', KEYS[3], 'recall') or '{}')
if st.n >= tonumber(plan.attempts or 1) then
  st.s = 'x'
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(st))
  return {'gave_up'}
end
local due = now + tonumber(plan.retry_ms or 0)
redis.call('ZADD', KEYS[1], due, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(st))
return {'retry', tostring(due)}
"""


@dataclass(frozen=True)
class RecallPlan:
    """A scenario's `director_callback`: who is called back, on which events, how hard."""

    enabled: bool = True
    #: Numbers called besides the director's own (normalized).
    numbers: tuple[str, ...] = ()
    on: tuple[str, ...] = EVENTS
    attempts: int = ATTEMPTS
    retry_delay: int = RETRY_DELAY

    def meta(self, director_number: str, director: str) -> str:
        """The campaign's `recall` field for a campaign `director` (staff id) started from
        `director_number` (a withheld or unusable caller id calls the listed numbers only);
        "" when there is nobody to call."""
        if not self.enabled or not self.on:
            return ""
        numbers: list[str] = []
        candidates = ([director_number] if director_number else []) + list(self.numbers)
        for raw in candidates:
            try:
                number = normalize_number(raw)
            except InvalidNumberError:
                continue
            if all(number_key(n) != number_key(number) for n in numbers):
                numbers.append(number)
        if not numbers:
            return ""
        plan = {
            "numbers": numbers,
            "on": dict.fromkeys(self.on, True),
            "attempts": self.attempts,
            "retry_ms": self.retry_delay * 1000,
            "director": director,
        }
        return json.dumps(plan, separators=(",", ":"))


def parse_plan(value: Any, where: str) -> RecallPlan:
    """A scenario's `director_callback`: `false`, `true`, or a table of `numbers` (list),
    `on` (["quota", "end"]), `attempts` (1-10) and `retry_delay` (seconds, 0-3600)."""
    here = f"{where}: director_callback"
    if isinstance(value, bool):
        return RecallPlan(enabled=value)
    if not isinstance(value, dict):
        raise ConfigError(f"{here}: true, false, or a table (numbers, on, attempts, retry_delay)")
    unknown = set(value) - {"enabled", "numbers", "on", "attempts", "retry_delay"}
    if unknown:
        raise ConfigError(f"{here}: unknown field(s) {', '.join(sorted(unknown))}")
    enabled = value.get("enabled", True)
    numbers, on = value.get("numbers", []), value.get("on", list(EVENTS))
    attempts, delay = value.get("attempts", ATTEMPTS), value.get("retry_delay", RETRY_DELAY)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{here}: enabled must be true or false")
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        raise ConfigError(f'{here}: numbers must be a list of texts (["0611223344"])')
    if len(numbers) > MAX_NUMBERS - 1:
        raise ConfigError(f"{here}: at most {MAX_NUMBERS - 1} numbers besides the director's")
    if not isinstance(on, list) or not set(on) <= set(EVENTS) or len(set(on)) != len(on):
        raise ConfigError(f'{here}: on must list "quota" and/or "end", each once')
    for bounds, got, name in ((limits.ATTEMPTS, attempts, "attempts"),
                              (RETRY_LIMITS, delay, "retry_delay")):  # fmt: skip
        if not isinstance(got, int) or isinstance(got, bool) or not bounds.holds(got):
            raise ConfigError(f"{here}: {name} must be {bounds.describe()}, got {got!r}")
    checked = []
    for raw in numbers:
        try:
            checked.append(normalize_number(raw))
        except InvalidNumberError as exc:
            raise ConfigError(f"{here}: {exc}") from None
    return RecallPlan(enabled, tuple(checked), tuple(on), attempts, delay)


@dataclass(frozen=True)
class Recall:
    """One attempt at calling one number back for one event of one campaign."""

    campaign: str
    event: str
    number: str
    #: 1 for the first call.
    attempt: int = 0

    @property
    def name(self) -> str:
        """Its field in the campaign's `recalls` hash."""
        return f"{self.event}:{self.number}"

    @property
    def member(self) -> str:
        """Its member of `recalls_due_key`."""
        return f"{self.campaign}:{self.name}"

    @property
    def token(self) -> str:
        """What the call carries to its flow (channel variable IVR_RECALL)."""
        return f"{self.member}:{self.attempt}"

    @classmethod
    def from_token(cls, token: str) -> Recall:
        """The call-back a call's IVR_RECALL names; ValueError if it names none."""
        cid, event, number, attempt = token.split(":")
        if not (cid.isdigit() and event.startswith(EVENTS) and attempt.isdigit()):
            raise ValueError(f"not a call-back: {token!r}")
        return cls(cid, event, normalize_number(number), int(attempt))


async def claim(redis: Redis, now_ms: int, *, lease_ms: int, worker: str) -> Recall | None:
    """The next call-back due, its attempt counted and leased to `worker`; None: none due.
    Through Sentinel it counts once a replica has it, and is not placed from a primary the
    Sentinels do not vouch for (a site cut off: `Replication.may_claim`)."""
    script = redis.register_script(_CLAIM)
    args: list[str | int] = [now_ms, lease_ms, worker, campaign_prefix]
    got, usable = await replication_of(redis).claimed(
        lambda client: script(keys=[recalls_due_key], args=args, client=client)
    )
    if not got or not usable:
        return None  # not usable: left to its lease on this copy, which the site's return drops
    cid, event, number = str(got[0]).split(":", 2)
    return Recall(cid, event, number, int(got[1]))


async def finish(
    redis: Redis, recall: Recall, outcome: str, now_ms: int, *, flow: bool = False
) -> list[str]:
    """Record an attempt: `answered` ends the call-back (['done']); any other outcome makes it
    due again after the retry delay (['retry', due_ms]) until its attempts are spent
    (['gave_up']). ['stale', state]: settled already.

    `flow`: from the call's own flow, which settles its attempt first: `answered` when the
    phone is picked up (whichever attempt is pending), `unheard` when nobody listened after
    all (the call-back is due again). The dialer's result for that attempt is then stale."""
    script = redis.register_script(_FINISH)
    keys = [
        recalls_due_key,
        campaign_key(recall.campaign, "recalls"),
        campaign_key(recall.campaign),
    ]
    by = "flow" if flow else "dialer"
    args: list[str | int] = [recall.member, recall.name, recall.attempt, outcome, now_ms, by]
    got = await replication_of(redis).acknowledged(
        lambda client: script(keys=keys, args=args, client=client)
    )
    return [str(x) for x in got]


async def next_due(redis: Redis) -> float | None:
    """When the next call-back is due (ms), if any."""
    got = await redis.zrange(recalls_due_key, 0, 0, withscores=True)
    return float(got[0][1]) if got else None


async def states(redis: Redis, cid: str) -> dict[str, dict[str, Any]]:
    """The campaign's call-backs: "<event>:<number>" -> {s: p(ending)/d(one)/x (gave up),
    n: attempts, o: last outcome}."""
    raw = cast(dict[str, str], await redis.hgetall(campaign_key(cid, "recalls")))
    return {name: json.loads(value) for name, value in raw.items()}


async def director(redis: Redis, cid: str) -> str:
    """The staff id of whoever started campaign `cid` by phone ("" otherwise)."""
    raw = cast(str | None, await redis.hget(campaign_key(cid), "recall"))
    return str(json.loads(raw).get("director", "")) if raw else ""
