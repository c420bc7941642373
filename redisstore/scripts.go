package redisstore

import "github.com/redis/go-redis/v9"

// The scripts run with Redis's own clock (TIME), never the caller's: the
// machines of a fleet disagree about the time, and a version or a turn must
// mean the same to all of them. Times are microseconds of Redis time.

// putScript keeps a record when its version is above the stored one, and
// drops from the change index a few members whose record expired (those
// due first by the expiry index), so that the index stays bounded by the
// records alive even when every reader asks with its latest cursor (and so
// never walks past the old members).
//
// KEYS[1] record hash, KEYS[2] sequence, KEYS[3] change index (zset),
// KEYS[4] expiry index (zset: member by expiry time, ms of Redis time)
// ARGV[1] version, ARGV[2] value, ARGV[3] TTL in ms, ARGV[4] index member,
// ARGV[5] TTL in ms of the sequence and the indexes, ARGV[6] record key
// prefix, ARGV[7] most expired members to drop; KEYS[5] the epoch: a number
// drawn when the sequence starts (again, after Redis lost its keys), so
// that a reader's cursor from before is told apart from the new sequence
var putScript = redis.NewScript(`
local t = redis.call('TIME')
if redis.call('EXISTS', KEYS[5]) == 0 then
	redis.call('SET', KEYS[5], (tonumber(t[2]) % 65535) + 1)
end
redis.call('PEXPIRE', KEYS[5], ARGV[5])
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', nowms, 'LIMIT', 0, tonumber(ARGV[7]))
for _, m in ipairs(old) do
	if m ~= ARGV[4] and redis.call('EXISTS', ARGV[6] .. m) == 0 then
		redis.call('ZREM', KEYS[3], m)
		redis.call('ZREM', KEYS[4], m)
	end
end
local cur = redis.call('HGET', KEYS[1], 'v')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then
	return 0
end
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2], 't', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], seq, ARGV[4])
redis.call('ZADD', KEYS[4], nowms + tonumber(ARGV[3]), ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('PEXPIRE', KEYS[4], ARGV[5])
return 1
`)

// changesScript returns the records changed since a cursor: the sequence
// now, then for each record its index member, version, value, TTL left (ms)
// and age (µs). A cursor above the sequence (the keys were lost) counts as
// 0; members whose record expired are dropped from the index.
//
// KEYS[1] sequence, KEYS[2] change index, KEYS[3] expiry index, KEYS[4]
// epoch; ARGV[1] cursor, ARGV[2] batch size, ARGV[3] record key prefix. The
// reply starts with the sequence, the last score read and the epoch (0: no
// record was ever put).
var changesScript = redis.NewScript(`
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local epoch = tonumber(redis.call('GET', KEYS[4]) or '0')
local cursor = tonumber(ARGV[1])
if seq < cursor then
	cursor = 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local members = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. cursor, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {seq}
local last = cursor
for i = 1, #members, 2 do
	local m = members[i]
	local key = ARGV[3] .. m
	local rec = redis.call('HMGET', key, 'v', 'd', 't')
	local ttl = redis.call('PTTL', key)
	last = tonumber(members[i + 1])
	if rec[1] and ttl > 0 then
		table.insert(out, m)
		table.insert(out, rec[1])
		table.insert(out, rec[2])
		table.insert(out, ttl)
		table.insert(out, now - tonumber(rec[3]))
	else
		redis.call('ZREM', KEYS[2], m)
		redis.call('ZREM', KEYS[3], m)
	end
end
if #members == 0 then
	last = seq
end
table.insert(out, 2, last)
table.insert(out, 3, epoch)
return out
`)

// reserveScript takes the next turn of a paced key (a GCRA with no burst):
// the turn is at the key's theoretical arrival time, or now if that has
// passed, and the next one an interval later. It returns the wait in µs.
//
// KEYS[1] pace key; ARGV[1] interval in µs
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
	tat = now
end
local nxt = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], nxt, 'PX', math.floor((nxt - now) / 1000) + 60000)
return tat - now
`)

// holdScript holds a paced key's turns for a while (a Retry-After).
//
// KEYS[1] pace key; ARGV[1] hold in µs
var holdScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local hold = now + tonumber(ARGV[1])
if hold > tat then
	redis.call('SET', KEYS[1], hold, 'PX', math.floor(tonumber(ARGV[1]) / 1000) + 60000)
end
return 0
`)

// heartbeatScript records a process as alive and counts the living.
//
// KEYS[1] alive index (zset); ARGV[1] process id, ARGV[2] TTL in µs
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], math.floor(tonumber(ARGV[2]) / 1000) + 1000)
return redis.call('ZCARD', KEYS[1])
`)
