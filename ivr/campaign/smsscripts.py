"""The scheduler's Lua scripts for the SMS steps of a delivery plan (`ivr.campaign.plan`):
claimed once ever, then done (sent, failed, skipped, unknown), which moves the person on in
their plan. `ivr.campaign.smssteps.SmsSteps` binds them (a base of the `Scheduler`).
"""

from __future__ import annotations

from ivr.campaign.scripts import COMMON
from ivr.keys import active_campaigns_key

# KEYS: meta state people sms sms_sending sms_jobs counts quota events sms_claims
# ARGV: now_ms lease_ms worker token
# The next SMS step due, marked "sending" by `worker` (lease: its expiry) and returned as
# {job, pid, step, person JSON, index, uid}; false when none is due. A step is handed out once
# ever (its `sms:jobs` entry): a sender that dies while sending is not replaced by a second
# SMS (`SMS_DONE` records it as unknown). Steps of people who answered meanwhile, or whose
# role's quota is met, are skipped; a person waiting on that step then ends `cancelled`.
# `token` names one claim of `worker`: sent again (its answer lost at a failover, the client
# retries), it gets the same step back while that step is still being sent by `worker`.
SMS_CLAIM = (
    COMMON
    + r"""
local last = redis.call('HGET', KEYS[10], ARGV[3])
if ARGV[4] ~= '' and last then
  local token, prev = string.match(last, '^(%S+) (.+)$')
  if token == ARGV[4] then
    if redis.call('HGET', KEYS[6], prev) ~= 'sending:' .. ARGV[3] then return false end
    local pid, step = string.match(prev, '^(.*):(%d+)$')
    local st = cjson.decode(redis.call('HGET', KEYS[2], pid))
    return {prev, pid, tonumber(step), redis.call('HGET', KEYS[3], pid), st.ix,
      redis.call('HGET', KEYS[1], 'uid')}
  end
end
local now = tonumber(ARGV[1])
local running = redis.call('HGET', KEYS[1], 'status') == 'running'
for _ = 1, 200 do
  local items = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 1)
  if #items == 0 then return false end
  local job = items[1]
  redis.call('ZREM', KEYS[4], job)
  if redis.call('HSETNX', KEYS[6], job, 'sending:' .. ARGV[3]) == 1 then
    local pid, step = string.match(job, '^(.*):(%d+)$')
    local st = cjson.decode(redis.call('HGET', KEYS[2], pid))
    local pjson = redis.call('HGET', KEYS[3], pid)
    local person = cjson.decode(pjson)
    local quota = tonumber(redis.call('HGET', KEYS[8], person.r) or '0')
    local got = tonumber(redis.call('HGET', KEYS[7], 'role:' .. person.r .. ':available') or '0')
    local skip = nil
    if st.s == 'd' then skip = 'answered'
    elseif not running then skip = 'stopped'
    elseif quota > 0 and got >= quota then skip = 'quota met' end
    if skip then
      redis.call('HSET', KEYS[6], job, 'skipped')
      redis.call('HINCRBY', KEYS[7], 'sms:skipped', 1)
      if st.s == 'm' then
        finalize(KEYS[1], KEYS[2], KEYS[7], KEYS[9], pid, st, person.r, 'cancelled', now)
      end
    else
      redis.call('ZADD', KEYS[5], now + tonumber(ARGV[2]), job)
      if ARGV[4] ~= '' then redis.call('HSET', KEYS[10], ARGV[3], ARGV[4] .. ' ' .. job) end
      return {job, pid, tonumber(step), pjson, st.ix, redis.call('HGET', KEYS[1], 'uid')}
    end
  end
end
return false
"""
).replace("@ACTIVE@", active_campaigns_key)

# KEYS: meta state people due0 due1 sms sms_sending sms_jobs counts events
# ARGV: job result(sent|failed|skipped|unknown) now_ms number detail
# The end of one SMS step, once (a replay, or the sender of an expired lease coming back, is
# ignored): counted, logged, and a person who was waiting on it moves to their plan's next step
# after the interval, or ends with their last call's outcome when the plan is over.
SMS_DONE = (
    COMMON
    + r"""
local job = ARGV[1]
local was = redis.call('HGET', KEYS[8], job)
if not was or string.sub(was, 1, 8) ~= 'sending:' then return {'stale'} end
local now = tonumber(ARGV[3])
local result = ARGV[2]
redis.call('HSET', KEYS[8], job, result)
redis.call('ZREM', KEYS[7], job)
redis.call('HINCRBY', KEYS[9], 'sms:' .. result, 1)
local pid, step = string.match(job, '^(.*):(%d+)$')
redis.call('XADD', KEYS[10], '*', 'type', 'sms', 'pid', pid, 'step', step, 'result', result,
  'number', ARGV[4], 'detail', ARGV[5], 't', now)
local st = cjson.decode(redis.call('HGET', KEYS[2], pid))
if st.s ~= 'm' or st.rd ~= tonumber(step) then return {result} end
local person = cjson.decode(redis.call('HGET', KEYS[3], pid))
if redis.call('HGET', KEYS[1], 'status') == 'running'
   and advance(KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6], person, pid, st, now) then
  return {result, 'next'}
end
finalize(KEYS[1], KEYS[2], KEYS[9], KEYS[10], pid, st, person.r, st.lo or 'no_answer', now)
return {result, 'final'}
"""
).replace("@ACTIVE@", active_campaigns_key)
