package redisstore

import (
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The scripts run with Redis's own clock (TIME), never the caller's: the
// machines of a fleet disagree about the time, and a version or a turn must
// mean the same to all of them. Times are microseconds of Redis time.

// recordLua reads a record hash, for putScript and changesScript: record(key,
// now) returns 'none' when key holds nothing; 'bad' when it holds no record
// within the limits (a key of another type; a field missing; a version or
// write time that is not a decimal integer of at most maxVersion; no expiry,
// or one more than maxTTL away); else 'ok' and the record's version (as
// stored), value, TTL left (ms) and age (µs, within 0 and maxTTL). Nothing
// that a writer outside the Store leaves under a record key makes a script
// fail (issue 20): the fields are checked as strings before any arithmetic,
// and only a hash is read as one. Lua numbers are doubles: a version is
// checked by its digits, since tonumber would round one above 2^53.
var recordLua = fmt.Sprintf(`
local function uint(s)
	if type(s) ~= 'string' or #s == 0 or #s > %[3]d or string.find(s, '%%D') or (#s == %[3]d and s > '%[1]d') then
		return nil
	end
	return tonumber(s)
end
local function record(key, now)
	local ty = redis.call('TYPE', key).ok
	if ty == 'none' then
		return 'none'
	end
	if ty ~= 'hash' then
		return 'bad'
	end
	local f = redis.call('HMGET', key, 'v', 'd', 't')
	local ttl = redis.call('PTTL', key)
	local t = uint(f[3])
	if not uint(f[1]) or not f[2] or not t or ttl <= 0 or ttl > %[2]d then
		return 'bad'
	end
	return 'ok', f[1], f[2], ttl, math.min(math.max(now - t, 0), %[2]d * 1000)
end
`, uint64(maxVersion), maxTTL.Milliseconds(), len(strconv.FormatUint(maxVersion, 10)))

// putScript keeps a record when its version is above the stored one, and
// drops from the change index a few members whose record expired (those
// due first by the expiry index), so that the index stays bounded by the
// records alive even when every reader asks with its latest cursor (and so
// never walks past the old members). A stored record that is malformed
// (recordLua) is replaced by any version, like an expired one.
//
// KEYS[1] record hash, KEYS[2] sequence, KEYS[3] change index (zset),
// KEYS[4] expiry index (zset: member by expiry time, ms of Redis time)
// ARGV[1] version (at most maxVersion), ARGV[2] value, ARGV[3] TTL in ms (at
// most maxTTL), ARGV[4] index member, ARGV[5] TTL in ms of the sequence and
// the indexes, ARGV[6] record key prefix, ARGV[7] most expired members to
// drop; KEYS[5] the epoch: a number drawn when the sequence starts (again,
// after Redis lost its keys), so that a reader's cursor from before is told
// apart from the new sequence
var putScript = redis.NewScript(recordLua + `
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
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state, cur = record(KEYS[1], now)
if state == 'ok' and tonumber(cur) >= tonumber(ARGV[1]) then
	return 0
end
if state == 'bad' then
	redis.call('DEL', KEYS[1])
end
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
// and age (µs); for a malformed record (recordLua) its member, false (a nil
// reply) for its version and value, and 0, 0. A cursor above the sequence
// (the keys were lost) counts as 0; members whose record expired are
// dropped from the index. A malformed record is left as it is (it may be a
// newer Store's): a put replaces it.
//
// KEYS[1] sequence, KEYS[2] change index, KEYS[3] expiry index, KEYS[4]
// epoch; ARGV[1] cursor, ARGV[2] batch size, ARGV[3] record key prefix. The
// reply starts with the sequence, the last score read and the epoch (0: no
// record was ever put).
var changesScript = redis.NewScript(recordLua + `
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
	local state, v, d, ttl, age = record(ARGV[3] .. m, now)
	last = tonumber(members[i + 1])
	if state == 'none' then
		redis.call('ZREM', KEYS[2], m)
		redis.call('ZREM', KEYS[3], m)
	else
		if state == 'bad' then
			v, d, ttl, age = false, false, 0, 0
		end
		for _, x in ipairs({m, v, d, ttl, age}) do
			table.insert(out, x)
		end
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
