"""The Lua scripts that write a new campaign, each safe to run twice (`ivr.campaign.store.create`).

Through Sentinel, a command whose reply was lost at a failover is sent again
(`ivr.db.DeadlineRetry`): it may have run already. A second run of these changes nothing that
the first run, or the workers since, wrote — no second id, no second `started` event, and above
all no person put back in the queue after a worker called them.
"""

from __future__ import annotations

# KEYS: seq creation ; ARGV: ttl_s
# The campaign's id: one INCR per creation, remembered under the creation's own token.
NEW_ID = r"""
local cid = redis.call('GET', KEYS[2])
if cid then return cid end
cid = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], cid, 'EX', tonumber(ARGV[1]))
return cid
"""

# KEYS: people state due:0 due:1 ; ARGV: due (id record state tier)...
# Puts people in the queue; a person already there (an earlier run) is left as they are now.
ADD_PEOPLE = r"""
local added = 0
local people, tiers = {}, {{}, {}}
for i = 2, #ARGV, 4 do
  local pid = ARGV[i]
  if redis.call('HSETNX', KEYS[2], pid, ARGV[i + 2]) == 1 then
    table.insert(people, pid)
    table.insert(people, ARGV[i + 1])
    local tier = tiers[1 + tonumber(ARGV[i + 3])]
    table.insert(tier, ARGV[1])
    table.insert(tier, pid)
    added = added + 1
  end
end
-- In slices: unpack() has a limit on how many values it returns.
local function in_slices(command, key, args)
  for first = 1, #args, 1000 do
    redis.call(command, key, unpack(args, first, math.min(first + 999, #args)))
  end
end
in_slices('HSET', KEYS[1], people)
in_slices('ZADD', KEYS[3], tiers[1])
in_slices('ZADD', KEYS[4], tiers[2])
return added
"""

# KEYS: meta quota counts events reserve campaigns active ;
# ARGV: started wake_channel wake_message json({meta, quota, counts, reserve})
# The campaign itself, once: a second run finds its hash and returns 0.
CREATE = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local parts = cjson.decode(ARGV[4])
local function hset(key, map)
  for field, value in pairs(map) do redis.call('HSET', key, field, value) end
end
hset(KEYS[2], parts.quota)
hset(KEYS[3], parts.counts)
redis.call('XADD', KEYS[4], '*', 'type', 'started', 't', ARGV[1])
hset(KEYS[5], parts.reserve)
hset(KEYS[1], parts.meta)
redis.call('ZADD', KEYS[6], ARGV[1], parts.meta.id)
redis.call('SADD', KEYS[7], parts.meta.id)
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""
