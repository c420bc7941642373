// Package otelmetrics exports the statistics of a warmpool.Transport as
// OpenTelemetry metrics: the same figures as the Prometheus collector
// (module github.com/warmpool/warmpool/prometheus), as asynchronous
// instruments.
//
// Register creates the instruments on a MeterProvider's Meter named
// ScopeName and registers one callback that takes one
// (*warmpool.Transport).Snapshot per collection and observes every
// instrument from it: nothing is counted twice, nothing runs between
// collections, and the request path is not touched.
//
//	import "github.com/warmpool/warmpool/otelmetrics"
//
//	rt, err := warmpool.New(warmpool.Config{Budget: warmpool.Budget{MaxRequests: 95}})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer rt.Close()
//	reg, err := otelmetrics.Register(rt, meterProvider) // nil: otel.GetMeterProvider()
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer reg.Unregister()
//
// # Semantic conventions
//
// Two figures have a name in OpenTelemetry's semantic conventions for HTTP
// clients, and use it, with its unit and attributes (server.address,
// server.port and url.scheme, from the target):
//
//   - http.client.open_connections, an UpDownCounter of {connection}, with
//     http.connection.state: "active" for busy and retiring sockets (a
//     retiring socket takes no new request), "idle" for idle and spare
//     ones. The attribute warmpool.socket.state ("busy", "idle", "spare",
//     "retiring") keeps warmpool's four states apart; sum it away for the
//     conventions' two.
//   - http.client.active_requests, an UpDownCounter of {request}: the
//     request attempts in flight.
//
// The conventions' histograms, http.client.request.duration and
// http.client.connection.duration, are not reported: a histogram is
// recorded by a synchronous instrument, request by request, and cannot be
// observed from a Snapshot, which keeps a latency distribution's count,
// mean and quantiles (no buckets) and no connection durations. The
// latency is reported as the Prometheus collector's summary is, in three
// instruments: warmpool.request.latency.count, .sum and .quantile. Every
// other figure is in the warmpool namespace.
//
// # Attributes and their bounds
//
// The per-socket-pool instruments carry warmpool.exit, the exit's name,
// and warmpool.target, a warmpool.Target such as "https://example.com:443"
// (one point per row of Snapshot.Pairs and value of the instrument's own
// attribute). warmpool bounds those rows to 1,024 targets per exit by
// folding the least recently used targets into the target "(other)"
// (warmpool.OtherTargets), which has no server.address, server.port or
// url.scheme. A target whose row was folded and that comes back starts
// its own series again from zero, as with Prometheus. WithTargets(false)
// drops warmpool.target and the server attributes and reports one point
// per exit instead (from Snapshot.Exits). Invalid UTF-8 in a name is
// replaced with U+FFFD.
//
// The OpenTelemetry SDK keeps at most 2,000 attribute sets per instrument
// by default (sdkmetric.WithCardinalityLimit) and adds the measurements
// beyond them into one point with the attribute otel.metric.overflow=true.
// http.client.open_connections has 4 points per pool, so with targets on
// more than about 500 exit and target pairs overflow: raise the limit
// (WithCardinalityLimit(0) lifts it; warmpool's own bound keeps the
// points at most 1,025 per exit times the values of an instrument's
// attribute) or turn targets off. The callback observes the pools with the
// most requests first, so that those keep their own points; the totals
// stay right either way.
//
// # Instruments
//
// Each instrument and the Prometheus collector's metric that has the same
// figure (with the default namespace), label by label. The pool
// attributes are warmpool.exit and warmpool.target (exit and target).
//
//	OpenTelemetry (kind, unit)                      Prometheus                             attributes = labels
//	warmpool.requests (counter, {request})          warmpool_requests_total                pool, warmpool.request.class=class: cold, prewarmed, reused
//	warmpool.errors (counter, {error})              warmpool_errors_total                  pool, error.type=kind: a warmpool.ErrorKind
//	warmpool.retries (counter, {request})           warmpool_retries_total                 pool
//	warmpool.responses (counter, {response})        warmpool_responses_total               pool, warmpool.response.status_class=code_class: 1xx to 5xx
//	warmpool.handshakes (counter, {handshake})      warmpool_handshakes_total              pool, warmpool.handshake.path=path: request (Stats.Cold), background (Stats.Prewarms)
//	warmpool.handshake.time (counter, s)            warmpool_handshake_seconds_total       pool, warmpool.handshake.path=path: request (HandshakeTax), background (PrewarmTime)
//	warmpool.tls.resumptions (counter, {handshake}) warmpool_tls_resumed_total             pool
//	warmpool.dial.errors (counter, {error})         warmpool_dial_errors_total             pool
//	warmpool.socket.closes (counter, {socket})      warmpool_socket_closes_total           pool, warmpool.socket.close_reason=reason: a warmpool.CloseReason
//	http.client.open_connections (updown, {connection})
//	                                                warmpool_sockets                       pool, warmpool.socket.state=state, http.connection.state, server.*, url.scheme
//	http.client.active_requests (updown, {request}) warmpool_in_flight                     pool, server.*, url.scheme
//	warmpool.keepalive.ratio (gauge, 1)             warmpool_keepalive_ratio               pool
//	warmpool.pool.efficiency (gauge, 1)             warmpool_pool_efficiency               pool
//	warmpool.concurrency.limit (gauge, {request})   warmpool_concurrency_limit             pool (only with Config.Concurrency on)
//	warmpool.exit.healthy (gauge, 1)                warmpool_exit_healthy                  warmpool.exit
//	warmpool.exit.ejections (counter, {ejection})   warmpool_exit_ejections_total          warmpool.exit
//	warmpool.exit.blocked_targets (gauge, {target}) warmpool_exit_blocked_targets          warmpool.exit
//	warmpool.request.latency.count (counter, {request})
//	                                                warmpool_request_latency_seconds_count warmpool.exit, warmpool.request.class=class: warm, cold
//	warmpool.request.latency.sum (counter, s)       warmpool_request_latency_seconds_sum   warmpool.exit, warmpool.request.class=class
//	warmpool.request.latency.quantile (gauge, s)    warmpool_request_latency_seconds       warmpool.exit, warmpool.request.class=class, warmpool.quantile=quantile: 0.5, 0.9, 0.99
//	warmpool.unused_prewarms (counter, {socket})    warmpool_unused_prewarms_total
//	warmpool.store.degraded (gauge, 1)              warmpool_store_degraded                (only with Config.Sharing.Store)
//	warmpool.store.errors (counter, {error})        warmpool_store_errors_total            (only with a store)
//	warmpool.store.records (counter, {record})      warmpool_store_records_total           warmpool.store.direction=direction: put, adopted, malformed (only with a store)
//	warmpool.store.politeness_turns (counter, {turn})
//	                                                warmpool_store_politeness_turns_total  warmpool.store.source=source: fleet, local (only with a store)
//	warmpool.up (gauge, 1)                          warmpool_up                            always 1
//
// Counters are Int64ObservableCounter (Float64 for seconds), cumulative
// since warmpool.New; gauges are Int64ObservableGauge or
// Float64ObservableGauge. warmpool.errors, warmpool.responses and
// warmpool.socket.closes have a point only for the attribute values that
// occurred, and the quantiles only once the class has a response (the
// Prometheus summary's are NaN before); the others are always present.
package otelmetrics
