// Package filestore keeps what warmpool Transports learn in a file, so that
// one machine's restarts keep it: a WAF's request limit, a dead proxy, a ban
// of one exit on one site.
//
//	st, err := filestore.New("/var/lib/crawler/warmpool.json")
//	if err != nil { ... }
//	defer st.Close() // after the Transports that use it
//
// A *Store is a warmpool.Store: give it to warmpool.New in the Config (see
// the Example). It holds the records in memory and writes them whole to the
// file at most once a second, atomically (a temporary file renamed over
// it), and once more on Close. One process at a time may use a file; for a
// fleet of processes use the redisstore module.
//
// # Limits
//
// A store keeps only warmpool's record kinds, at most 1024 of each (the
// least recently written go first), and, as the redisstore module does, a
// record of a version of at most 2^53 for at most 24 hours. A file is read
// only up to 16 MiB; one that cannot be used is ignored with a warning
// through slog.Default and replaced at the next write. See New.
package filestore
