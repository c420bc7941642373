// Package redisstore shares what warmpool Transports learn through Redis, so
// that a fleet of processes (cron jobs, pods behind the same proxy exits)
// learns once: a WAF's request limit, a dead proxy, a ban of one exit on one
// site, and one politeness clock per site for the whole fleet.
//
//	client := redis.NewClient(&redis.Options{Addr: "redis:6379"})
//	st, err := redisstore.New(client, redisstore.Options{Prefix: "crawler:"})
//	if err != nil { ... }
//	defer st.Close()
//	rt, err := warmpool.New(warmpool.Config{Sharing: warmpool.Sharing{Store: st},
//		Politeness: warmpool.Politeness{Delay: 50 * time.Millisecond}}) // 20 req/s per site, fleet-wide
//
// Keys (under the hash tag "{prefix}"): r:<kind>:<key> (a record: version,
// value, write time by Redis's clock; it expires with its TTL), seq and
// changes (the change index: one member per record, scored by a sequence
// number), expiry (the same members scored by when their record expires:
// each put drops a few expired ones from both indexes, so they hold about
// the records alive), epoch (drawn when the sequence starts, so that a
// reader whose cursor predates a flush or an empty restart is told so),
// p:<target> (a target's next politeness turn) and alive (the processes'
// heart beats). Versions are logical and times are Redis's own (TIME in
// the scripts): no two machines' clocks are ever compared. Record
// keys never hold credentials: warmpool keys a proxy exit by its scheme and
// address.
//
// # Limits
//
// A record's version is at most 2^53 (the scripts' Lua numbers are doubles;
// warmpool's versions are small counters) and its TTL at most 24 hours: Put
// drops a record of a higher version and cuts a longer TTL to 24 hours. A
// record key that holds anything else is malformed: a key that is not a
// hash, a field (v, d, t) missing, a version or write time (t) that is not
// a decimal integer of at most 2^53, no expiry or one more than 24 hours
// away. Anyone who can write to the Redis can leave one; it never fails a
// call nor stops the other records: Changes returns it with its kind and
// key and a nil Value (the Transport counts it as malformed and adopts
// nothing of it) and leaves it in Redis, and the next Put to its kind and
// key replaces it, whatever the version. A record's age is within 0 and 24
// hours whatever its write time. So no record can win against later puts
// for more than a day.
//
// Redis that is down, slow or flushed never fails a request: warmpool bounds
// each call (Config.Sharing.Timeout), goes on with local state, paces at the
// fleet's delay times the processes last seen alive, and puts everything
// again when Redis answers.
package redisstore
