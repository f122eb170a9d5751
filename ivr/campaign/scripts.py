"""The scheduler's Lua scripts: every step a person goes through a campaign, each atomic in
Redis. `ivr.campaign.scheduler.Scheduler` binds them; its docstring says what each does. The
per-person state they read and write is spelt out in `ivr.campaign.state`, the person record
in `ivr.staff.roster.Person.to_json`.
"""

from __future__ import annotations

from ivr.campaign.recall import NOTE
from ivr.keys import active_campaigns_key

# `recall_note` (ivr.campaign.recall) notes the director's call-backs in the very step that
# meets a campaign's last quota or ends it.
COMMON = (
    NOTE
    + r"""
local function quota_reached(counts, quota, events, role, now)
  local wanted = tonumber(redis.call('HGET', quota, role) or '0')
  local got = tonumber(redis.call('HGET', counts, 'role:' .. role .. ':available'))
  if wanted > 0 and got == wanted then
    redis.call('XADD', events, '*', 'type', 'quota_met', 'role', role, 't', now)
    return true
  end
  return false
end
local function plan_of(meta)
  local raw = redis.call('HGET', meta, 'plan')
  if raw then return cjson.decode(raw) end
  -- A campaign from before plans: `attempts` voice rounds.
  local steps = {}
  for i = 1, tonumber(redis.call('HGET', meta, 'attempts') or '1') do steps[i] = 'voice' end
  return steps
end
local function has(step, channel)
  return step ~= nil and string.find(step, channel, 1, true) ~= nil
end
-- Moves the person to their plan's next step, one interval (the retry delay) from `now`: into
-- the voice queue, the SMS queue or both. Returns the due time, or false when the plan is over.
local function advance(meta, state, due0, due1, smsq, person, pid, st, now)
  local plan = plan_of(meta)
  local k = st.rd + 1
  if k >= #plan then return false end
  local step = plan[k + 1]
  local due = now + tonumber(redis.call('HGET', meta, 'retry_delay_ms') or '0')
  st.rd = k; st.ph = 0
  if has(step, 'sms') then redis.call('ZADD', smsq, 'NX', due, pid .. ':' .. k) end
  if has(step, 'voice') then
    st.s = 'q'
    redis.call('ZADD', (person.o == 1 or st.esc) and due0 or due1, due, pid)
  else
    st.s = 'm'
  end
  redis.call('HSET', state, pid, cjson.encode(st))
  return due
end
local function finalize(meta, state, counts, events, pid, st, role, outcome, now)
  st.s = 'd'; st.o = outcome; st.ft = now
  redis.call('HSET', state, pid, cjson.encode(st))
  redis.call('HINCRBY', counts, 'final:' .. outcome, 1)
  redis.call('HINCRBY', counts, 'role:' .. role .. ':' .. outcome, 1)
  redis.call('XADD', events, '*', 'type', 'final', 'pid', pid, 'outcome', outcome, 't', now)
  local open = redis.call('HINCRBY', counts, 'open', -1)
  if open <= 0 then
    local status = redis.call('HGET', meta, 'status')
    if status == 'running' then
      redis.call('HSET', meta, 'status', 'done', 'finished_at', now)
      redis.call('XADD', events, '*', 'type', 'done', 't', now)
      redis.call('SREM', '@ACTIVE@', redis.call('HGET', meta, 'id'))
      recall_note(meta, 'end', now, '', '')
    elseif not redis.call('HGET', meta, 'finished_at') then
      -- Stopped or failed stays so: its last call is over.
      redis.call('HSET', meta, 'finished_at', now)
    end
  end
end
"""
)

# KEYS: meta state people due0 due1 leases counts quota events claims sms
# ARGV: now_ms lease_ms worker asterisk token
# `token` names one claim of `worker`: the same token sent again (its answer was lost at a
# failover, the client retries) gets the same person back instead of claiming a second one.
CLAIM = (
    COMMON
    + r"""
local last = redis.call('HGET', KEYS[10], ARGV[3])
if ARGV[5] ~= '' and last then
  local token, prev = string.match(last, '^(%S+) (.+)$')
  if token == ARGV[5] then
    local st = cjson.decode(redis.call('HGET', KEYS[2], prev))
    if st.s ~= 'c' or st.w ~= ARGV[3] then return false end
    local pjson = redis.call('HGET', KEYS[3], prev)
    local person = cjson.decode(pjson)
    return {prev, st.n, person.p[st.ph + 1], pjson, st.ix, redis.call('HGET', KEYS[1], 'uid')}
  end
end
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
local now = tonumber(ARGV[1])
-- Calls in flight for a role with a quota are capped at `overcall` times the answers still
-- needed: the rest of the lines go to other roles instead of over-mobilising this one.
local overcall = tonumber(redis.call('HGET', KEYS[1], 'overcall') or '0')
local scanned = 0
for t = 4, 5 do
  local offset = 0
  while scanned < 500 do
    local items = redis.call('ZRANGEBYSCORE', KEYS[t], '-inf', now, 'LIMIT', offset, 1)
    if #items == 0 then break end
    scanned = scanned + 1
    local pid = items[1]
    local st = cjson.decode(redis.call('HGET', KEYS[2], pid))
    local pjson = redis.call('HGET', KEYS[3], pid)
    local person = cjson.decode(pjson)
    local role = person.r
    local quota = tonumber(redis.call('HGET', KEYS[8], role) or '0')
    local got = tonumber(redis.call('HGET', KEYS[7], 'role:' .. role .. ':available') or '0')
    local flight = tonumber(redis.call('HGET', KEYS[7], 'flight:' .. role) or '0')
    if quota > 0 and got >= quota then
      redis.call('ZREM', KEYS[t], pid)
      finalize(KEYS[1], KEYS[2], KEYS[7], KEYS[9], pid, st, role, 'cancelled', now)
    elseif quota > 0 and overcall > 0 and flight >= math.ceil((quota - got) * overcall) then
      offset = offset + 1
    else
      redis.call('ZREM', KEYS[t], pid)
      if st.ph == 0 and has(plan_of(KEYS[1])[st.rd + 1], 'sms') then
        -- A voice+sms step: its SMS leaves with its first call (once: NX, and the SMS
        -- sender skips a step already sent).
        redis.call('ZADD', KEYS[11], 'NX', now, pid .. ':' .. st.rd)
      end
      st.s = 'c'; st.n = st.n + 1; st.w = ARGV[3]; st.a = ARGV[4]
      redis.call('HSET', KEYS[2], pid, cjson.encode(st))
      redis.call('ZADD', KEYS[6], now + tonumber(ARGV[2]), pid)
      redis.call('HINCRBY', KEYS[7], 'flight:' .. role, 1)
      if ARGV[5] ~= '' then redis.call('HSET', KEYS[10], ARGV[3], ARGV[5] .. ' ' .. pid) end
      return {pid, st.n, person.p[st.ph + 1], pjson, st.ix, redis.call('HGET', KEYS[1], 'uid')}
    end
  end
end
return false
"""
)

# KEYS: meta state people due0 due1 leases counts quota events reserve sms
# ARGV: pid attempt_no outcome now_ms worker number detail
FINISH = (
    COMMON
    + r"""
local pid = ARGV[1]
local raw = redis.call('HGET', KEYS[2], pid)
if not raw then return {'unknown'} end
local st = cjson.decode(raw)
if st.s ~= 'c' or st.n ~= tonumber(ARGV[2]) then return {'stale'} end
local now = tonumber(ARGV[4])
local outcome = ARGV[3]
local person = cjson.decode(redis.call('HGET', KEYS[3], pid))
local role = person.r
redis.call('HINCRBY', KEYS[7], 'flight:' .. role, -1)
redis.call('HINCRBY', KEYS[7], 'attempts', 1)
redis.call('HINCRBY', KEYS[7], 'attempt:' .. outcome, 1)
redis.call('XADD', KEYS[9], '*', 'type', 'attempt', 'pid', pid, 'n', st.n, 'step', st.rd or 0,
  'outcome', outcome, 'number', ARGV[6], 'w', ARGV[5], 'detail', ARGV[7], 't', now)
if outcome == 'available' or outcome == 'unavailable' or outcome == 'cancelled' then
  finalize(KEYS[1], KEYS[2], KEYS[7], KEYS[9], pid, st, role, outcome, now)
  if outcome == 'available' and quota_reached(KEYS[7], KEYS[8], KEYS[9], role, now) then
    if all_quotas_met(KEYS[7], KEYS[8]) then recall_note(KEYS[1], 'quota', now, '', '') end
    return {'quota_met', role}
  end
  return {'final', outcome}
end
local tier = (person.o == 1 or st.esc) and 4 or 5
if st.ph + 1 < #person.p then
  st.ph = st.ph + 1; st.s = 'q'
  redis.call('HSET', KEYS[2], pid, cjson.encode(st))
  redis.call('ZADD', KEYS[tier], now, pid)
  return {'next_number'}
end
-- The last voice outcome is the final one if the plan ends on an SMS nobody answers.
st.lo = outcome
local due = advance(KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[11], person, pid, st, now)
if due then
  if st.s == 'm' then return {'sms', due} end
  return {'retry', due}
end
-- The backup goes in before this person's end is counted: the campaign must not end (and
-- call its director back) for the instant between the two.
local backup = person.b
local live = redis.call('HGET', KEYS[1], 'status')
local bjson = false
if backup and (live == 'running' or live == 'done')
   and redis.call('HGET', KEYS[1], 'escalate') == '1'
   and redis.call('HEXISTS', KEYS[2], backup) == 0 then
  bjson = redis.call('HGET', KEYS[10], backup)
end
if not bjson then
  finalize(KEYS[1], KEYS[2], KEYS[7], KEYS[9], pid, st, role, outcome, now)
  return {'final', outcome}
end
local ix = redis.call('HINCRBY', KEYS[1], 'next_ix', 1) - 1
redis.call('HSET', KEYS[3], backup, bjson)
redis.call('HSET', KEYS[2], backup,
  cjson.encode({s = 'q', n = 0, ph = 0, rd = 0, ix = ix, esc = pid}))
redis.call('ZADD', KEYS[4], now, backup)
redis.call('HINCRBY', KEYS[7], 'open', 1)
redis.call('HINCRBY', KEYS[7], 'total', 1)
if live == 'done' then
  redis.call('HSET', KEYS[1], 'status', 'running')
  redis.call('HDEL', KEYS[1], 'finished_at')
  redis.call('SADD', '@ACTIVE@', redis.call('HGET', KEYS[1], 'id'))
end
finalize(KEYS[1], KEYS[2], KEYS[7], KEYS[9], pid, st, role, outcome, now)
redis.call('XADD', KEYS[9], '*', 'type', 'escalated', 'pid', pid, 'backup', backup, 't', now)
return {'escalated', backup}
"""
)
# The set of running campaigns is not one campaign's key: name it once, from constants.
CLAIM, FINISH = (s.replace("@ACTIVE@", active_campaigns_key) for s in (CLAIM, FINISH))

# KEYS: meta state people due0 due1 leases counts events
# ARGV: pid attempt_no now_ms
# A campaign stopped or failed meanwhile takes nobody back: the person ends `cancelled`.
REQUEUE = (
    COMMON
    + r"""
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return 0 end
local st = cjson.decode(raw)
if st.s ~= 'c' or st.n ~= tonumber(ARGV[2]) then return 0 end
local person = cjson.decode(redis.call('HGET', KEYS[3], ARGV[1]))
redis.call('HINCRBY', KEYS[7], 'flight:' .. person.r, -1)
redis.call('ZREM', KEYS[6], ARGV[1])
st.n = st.n - 1
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
  local now = tonumber(ARGV[3])
  finalize(KEYS[1], KEYS[2], KEYS[7], KEYS[8], ARGV[1], st, person.r, 'cancelled', now)
  return 1
end
st.s = 'q'
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(st))
local tier = (person.o == 1 or st.esc) and 4 or 5
redis.call('ZADD', KEYS[tier], tonumber(ARGV[3]), ARGV[1])
return 1
"""
).replace("@ACTIVE@", active_campaigns_key)

# KEYS: meta state people due0 due1 leases counts quota events
# ARGV: pid outcome now_ms number channel(callback|sms)
# An answer given on the callback line or by an SMS reply: it ends the person's campaign like
# a key pressed on an alert call, once. A person who already answered keeps their answer; one
# who was not reached (or is queued, waiting for an SMS step, or being called right now) gets
# this one as their final outcome: the rest of their plan is dropped. A yes by SMS once the
# role's quota is met is refused ({'quota_full', role}), as a key press would hear "enough".
ANSWER = (
    COMMON
    + r"""
local pid = ARGV[1]
local raw = redis.call('HGET', KEYS[2], pid)
if not raw then return {'unknown'} end
local st = cjson.decode(raw)
if st.s == 'd' and (st.o == 'available' or st.o == 'unavailable') then
  return {'already', st.o}
end
local now = tonumber(ARGV[3])
local outcome = ARGV[2]
local person = cjson.decode(redis.call('HGET', KEYS[3], pid))
local role = person.r
local channel = ARGV[5]
if channel == 'sms' and outcome == 'available' then
  -- A late yes by SMS, once the role has its answers, is thanked but not counted (a key press
  -- then hears "enough staff"): checked here, atomically with the count.
  local wanted = tonumber(redis.call('HGET', KEYS[8], role) or '0')
  local got = tonumber(redis.call('HGET', KEYS[7], 'role:' .. role .. ':available') or '0')
  if wanted > 0 and got >= wanted then return {'quota_full', role} end
end
redis.call('HINCRBY', KEYS[7], 'attempts', 1)
redis.call('HINCRBY', KEYS[7], 'attempt:' .. outcome, 1)
redis.call('XADD', KEYS[9], '*', 'type', 'attempt', 'pid', pid, 'n', st.n, 'step', st.rd or 0,
  'outcome', outcome, 'number', ARGV[4], 'w', channel,
  'detail', channel == 'sms' and 'SMS reply' or 'callback line', 't', now)
if channel == 'sms' then
  st.sr = 1
  redis.call('HINCRBY', KEYS[7], 'sms:answered', 1)
else
  st.cb = 1
end
if st.s == 'd' then
  redis.call('HINCRBY', KEYS[7], 'final:' .. st.o, -1)
  redis.call('HINCRBY', KEYS[7], 'role:' .. role .. ':' .. st.o, -1)
  st.o = outcome; st.ft = now
  redis.call('HSET', KEYS[2], pid, cjson.encode(st))
  redis.call('HINCRBY', KEYS[7], 'final:' .. outcome, 1)
  redis.call('HINCRBY', KEYS[7], 'role:' .. role .. ':' .. outcome, 1)
  redis.call('XADD', KEYS[9], '*', 'type', 'final', 'pid', pid, 'outcome', outcome, 't', now)
else
  if st.s == 'c' then
    -- The call in progress keeps its lease until it ends; its own result will be stale.
    redis.call('HINCRBY', KEYS[7], 'flight:' .. role, -1)
  else
    redis.call('ZREM', KEYS[4], pid)
    redis.call('ZREM', KEYS[5], pid)
  end
  finalize(KEYS[1], KEYS[2], KEYS[7], KEYS[9], pid, st, role, outcome, now)
end
if outcome == 'available' and quota_reached(KEYS[7], KEYS[8], KEYS[9], role, now) then
  if all_quotas_met(KEYS[7], KEYS[8]) then recall_note(KEYS[1], 'quota', now, '', '') end
  return {'quota_met', role}
end
return {'final', outcome}
"""
).replace("@ACTIVE@", active_campaigns_key)

# KEYS: state leases ; ARGV: pid attempt_no worker
RELEASE = r"""
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local st = cjson.decode(raw)
if st.n ~= tonumber(ARGV[2]) or st.w ~= ARGV[3] then return 0 end
return redis.call('ZREM', KEYS[2], ARGV[1])
"""

# KEYS: state counts events ; ARGV: pid minutes now_ms role
ETA = r"""
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local st = cjson.decode(raw)
if st.o ~= 'available' or st.eta then return 0 end
local minutes = tonumber(ARGV[2])
st.eta = minutes
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(st))
local bucket = '90+'
if minutes <= 30 then bucket = '30' elseif minutes <= 60 then bucket = '60'
elseif minutes <= 90 then bucket = '90' end
redis.call('HINCRBY', KEYS[2], 'eta:' .. ARGV[4] .. ':' .. bucket, 1)
redis.call('XADD', KEYS[3], '*', 'type', 'eta', 'pid', ARGV[1], 'minutes', minutes, 't', ARGV[3])
return 1
"""

# KEYS: meta state people due0 due1 counts events sms sms_sending
# ARGV: now_ms status reason by phone
# (by, phone: the staff id who stopped it by phone, and that phone: ivr.campaign.recall)
# Ends a running campaign as `stopped` (an operator) or `failed` (it cannot run: its message
# cannot be rendered...): nobody else is called, everyone still queued ends `cancelled`; calls
# in progress finish and are counted. Returns the campaign's status afterwards.
END = (
    COMMON
    + r"""
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' then return status end
local now = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'status', ARGV[2], ARGV[2] .. '_at', now)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[3]) end
redis.call('SREM', '@ACTIVE@', redis.call('HGET', KEYS[1], 'id'))
redis.call('XADD', KEYS[7], '*', 'type', ARGV[2], 'reason', ARGV[3], 't', now)
recall_note(KEYS[1], 'end', now, ARGV[4] or '', ARGV[5] or '')
for t = 4, 5 do
  for _, pid in ipairs(redis.call('ZRANGE', KEYS[t], 0, -1)) do
    redis.call('ZREM', KEYS[t], pid)
    local st = cjson.decode(redis.call('HGET', KEYS[2], pid))
    local person = cjson.decode(redis.call('HGET', KEYS[3], pid))
    finalize(KEYS[1], KEYS[2], KEYS[6], KEYS[7], pid, st, person.r, 'cancelled', now)
  end
end
-- SMS steps not sent yet are dropped; one being sent goes, but its person's plan ends here.
for t = 8, 9 do
  for _, job in ipairs(redis.call('ZRANGE', KEYS[t], 0, -1)) do
    if t == 8 then redis.call('ZREM', KEYS[t], job) end
    local pid = string.match(job, '^(.*):%d+$')
    local st = cjson.decode(redis.call('HGET', KEYS[2], pid))
    if st.s == 'm' then
      local person = cjson.decode(redis.call('HGET', KEYS[3], pid))
      finalize(KEYS[1], KEYS[2], KEYS[6], KEYS[7], pid, st, person.r, 'cancelled', now)
    end
  end
end
return ARGV[2]
"""
).replace("@ACTIVE@", active_campaigns_key)
