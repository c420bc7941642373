// Package prometheus exports the statistics of a warmpool.Transport as
// Prometheus metrics.
//
// NewCollector returns a prometheus.Collector that takes one
// (*warmpool.Transport).Snapshot on each scrape and turns it into constant
// metrics: nothing is counted twice and nothing runs between scrapes.
//
//	import wpprom "github.com/warmpool/warmpool/prometheus"
//
//	rt, err := warmpool.New(warmpool.Config{Budget: warmpool.Budget{MaxRequests: 95}})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer rt.Close()
//	prometheus.MustRegister(wpprom.NewCollector(rt))
//	http.Handle("/metrics", promhttp.Handler())
//
// # Metrics
//
// With the default namespace "warmpool", the per-socket-pool series carry
// the labels exit and target, whose value is a warmpool.Target such as
// "https://example.com:443" (one series per row of Snapshot.Pairs; warmpool
// bounds those rows to 1,024 targets per exit by folding the least recently
// used targets into the target "(other)", warmpool.OtherTargets).
// WithTargets(false) drops the target label and reports one series per exit
// instead (from Snapshot.Exits).
//
// Counters:
//
//	warmpool_requests_total{exit,target,class}         attempts by class: cold, prewarmed, reused
//	warmpool_errors_total{exit,target,kind}            failed attempts by warmpool.ErrorKind
//	warmpool_retries_total{exit,target}                attempts retried on another socket
//	warmpool_responses_total{exit,target,code_class}   responses by status class: 1xx to 5xx
//	warmpool_handshakes_total{exit,target,path}        path="request": cold attempts; path="background": prewarmed sockets
//	warmpool_handshake_seconds_total{exit,target,path} handshake time on requests' paths (HandshakeTax) and in the background (PrewarmTime)
//	warmpool_tls_resumed_total{exit,target}            handshakes that resumed a TLS session
//	warmpool_dial_errors_total{exit,target}            dials that failed
//	warmpool_socket_closes_total{exit,target,reason}   ended sockets by warmpool.CloseReason
//	warmpool_exit_ejections_total{exit}                ejections of the exit for repeated failures
//	warmpool_unused_prewarms_total                     background sockets that closed unused
//	warmpool_store_errors_total                        failed calls to Config.Sharing.Store (with a store)
//	warmpool_store_records_total{direction}            records put (learned here) or adopted (from others)
//	warmpool_store_politeness_turns_total{source}      politeness turns from the fleet or taken locally
//
// Gauges:
//
//	warmpool_sockets{exit,target,state}                open sockets by state: busy, idle, spare, retiring
//	warmpool_in_flight{exit,target}                    attempts in flight
//	warmpool_keepalive_ratio{exit,target}              Reused / Requests, 0 to 1
//	warmpool_pool_efficiency{exit,target}              open sockets / peak attempts in flight
//	warmpool_concurrency_limit{exit,target}            adaptive concurrency limit per exit and target (only with Config.Concurrency on)
//	warmpool_exit_healthy{exit}                        1 while the exit takes requests, 0 while it is ejected
//	warmpool_exit_blocked_targets{exit}                targets avoiding the exit now (Config.Blocks)
//	warmpool_store_degraded                            1 while Config.Sharing.Store fails (with a store)
//	warmpool_up                                        always 1
//
// Summary, per exit only to bound cardinality:
//
//	warmpool_request_latency_seconds{exit,class}       time from asking for a socket to the response headers,
//	                                                   class="warm" (reused and prewarmed) or "cold";
//	                                                   quantiles 0.5, 0.9 and 0.99, with _sum and _count
//
// Map-valued counters (errors, responses, socket closes) have a series only
// for the label values that occurred, and the store's only with a
// Config.Sharing.Store; the others are always present.
package prometheus
