"""The scheduler's Lua scripts for a worker's upkeep, beside `ivr.campaign.scripts`: the attempts
of a dead worker (`RECLAIM`), those of a lost site (`ORPHANS`), and a campaign its creator left
half-written (`UNWRITTEN`). `ivr.campaign.scheduler.Scheduler` binds the first two,
`ivr.campaign.store.repair_unwritten` runs the last.
"""

from __future__ import annotations

from ivr.campaign.scripts import COMMON
from ivr.keys import active_campaigns_key

# KEYS: state leases ; ARGV: now_ms lease_ms worker asterisk own(1: also this worker's own)
RECLAIM = r"""
local now = tonumber(ARGV[1])
local out = {}
local pids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '+inf')
for _, pid in ipairs(pids) do
  local st = cjson.decode(redis.call('HGET', KEYS[1], pid))
  local expiry = tonumber(redis.call('ZSCORE', KEYS[2], pid))
  local mine = ARGV[5] == '1' and st.w == ARGV[3]
  if st.s ~= 'c' and expiry <= now then
    -- Its outcome is recorded; only the end of the call (an arrival time) went with its worker.
    redis.call('ZREM', KEYS[2], pid)
  elseif st.s == 'c' and st.a == ARGV[4] and (expiry <= now or mine) then
    st.w = ARGV[3]
    redis.call('HSET', KEYS[1], pid, cjson.encode(st))
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), pid)
    table.insert(out, pid)
    table.insert(out, st.n)
    table.insert(out, st.ph)
  end
end
return out
"""

# KEYS: state leases ; ARGV: now_ms lease_ms worker asterisk orphan_after_ms live_asterisk...
# Attempts on another Asterisk that no live worker dials through any more (a site lost), whose
# lease expired more than `orphan_after_ms` ago: longer than any call lasts, so that Asterisk
# can no longer deliver their key. This worker takes them, to end them as lost (`finish`).
ORPHANS = r"""
local now = tonumber(ARGV[1])
local live = {}
for i = 6, #ARGV do live[ARGV[i]] = true end
local out = {}
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]))
for _, pid in ipairs(old) do
  local st = cjson.decode(redis.call('HGET', KEYS[1], pid))
  if st.s == 'c' and st.a ~= ARGV[4] and not live[st.a] then
    table.insert(out, pid)
    table.insert(out, st.n)
    table.insert(out, st.ph)
    table.insert(out, st.a)
    st.w = ARGV[3]
    redis.call('HSET', KEYS[1], pid, cjson.encode(st))
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), pid)
  end
end
return out
"""

# KEYS: meta state counts events ; ARGV: now_ms
# A campaign whose creator stopped before writing everyone (`meta.writing`: how many it was to
# hold): `open` counted them all from the start, so it would never end. Count those written,
# take the others out of `open` and `total`, say so in an event, and end it if nobody is left.
UNWRITTEN = (
    COMMON
    + r"""
local expected = tonumber(redis.call('HGET', KEYS[1], 'writing') or '-1')
if expected < 0 then return -1 end
local written = 0
for _, raw in ipairs(redis.call('HVALS', KEYS[2])) do
  if cjson.decode(raw).ix < expected then written = written + 1 end
end
local missing = expected - written
local now = tonumber(ARGV[1])
redis.call('HDEL', KEYS[1], 'writing')
redis.call('HINCRBY', KEYS[3], 'total', -missing)
local open = redis.call('HINCRBY', KEYS[3], 'open', -missing)
if missing > 0 then
  redis.call('XADD', KEYS[4], '*', 'type', 'incomplete', 'written', written,
    'expected', expected, 't', now)
end
if open <= 0 and redis.call('HGET', KEYS[1], 'status') == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'done', 'finished_at', now)
  redis.call('XADD', KEYS[4], '*', 'type', 'done', 't', now)
  redis.call('SREM', '@ACTIVE@', redis.call('HGET', KEYS[1], 'id'))
  recall_note(KEYS[1], 'end', now, '', '')
end
return missing
"""
).replace("@ACTIVE@", active_campaigns_key)
