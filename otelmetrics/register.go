package otelmetrics

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/metricrows"
)

// ScopeName is the name of the Meter (the instrumentation scope) that
// Register takes from the MeterProvider.
const ScopeName = "github.com/warmpool/warmpool/otelmetrics"

// The attribute keys of the instruments. The semantic conventions' keys
// come from the semconv package; the others are in the warmpool namespace.
const (
	exitKey        = attribute.Key("warmpool.exit")
	targetKey      = attribute.Key("warmpool.target")
	classKey       = attribute.Key("warmpool.request.class")
	statusClassKey = attribute.Key("warmpool.response.status_class")
	pathKey        = attribute.Key("warmpool.handshake.path")
	reasonKey      = attribute.Key("warmpool.socket.close_reason")
	socketStateKey = attribute.Key("warmpool.socket.state")
	quantileKey    = attribute.Key("warmpool.quantile")
	directionKey   = attribute.Key("warmpool.store.direction")
	sourceKey      = attribute.Key("warmpool.store.source")
)

// ownKeys are the keys WithAttributes may not use.
var ownKeys = map[attribute.Key]bool{
	exitKey: true, targetKey: true, classKey: true, statusClassKey: true,
	pathKey: true, reasonKey: true, socketStateKey: true, quantileKey: true,
	directionKey: true, sourceKey: true,
	semconv.ErrorTypeKey: true, semconv.HTTPConnectionStateKey: true,
	semconv.ServerAddressKey: true, semconv.ServerPortKey: true, semconv.URLSchemeKey: true,
}

// Register creates the instruments listed in the package documentation on
// mp's Meter named ScopeName, and one callback that reads t.Snapshot() once
// per collection and observes every instrument from it. A nil mp means the
// global MeterProvider (otel.GetMeterProvider()).
//
// Unregister the returned Registration to stop the callback: the SDK's
// instruments then report nothing (instruments cannot be removed from a
// Meter). Register each Transport once per MeterProvider, and give
// several Transports on one MeterProvider their own WithAttributes: the
// SDK adds up the counters of registrations that observe the same
// attributes and keeps one of their gauges.
func Register(t *warmpool.Transport, mp metric.MeterProvider, opts ...Option) (metric.Registration, error) {
	if t == nil {
		return nil, errors.New("otelmetrics: Register: nil Transport")
	}
	return register(t.Snapshot, mp, opts...)
}

// register is Register with the Snapshot as a function, for tests.
func register(snapshot func() warmpool.Snapshot, mp metric.MeterProvider, opts ...Option) (metric.Registration, error) {
	o := options{targets: true}
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkAttributes(o.attrs); err != nil {
		return nil, err
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	ob := &observer{snapshot: snapshot, targets: o.targets, attrs: o.attrs}
	ins, err := ob.instruments(m)
	if err != nil {
		return nil, err
	}
	return m.RegisterCallback(ob.observe, ins...)
}

// observer turns one Snapshot per collection into observations.
type observer struct {
	snapshot func() warmpool.Snapshot
	targets  bool
	attrs    []attribute.KeyValue // WithAttributes

	// Per pool (exit and target, or exit only with targets off).
	requests, errors, retries, responses metric.Int64ObservableCounter
	handshakes, resumptions, dialErrors  metric.Int64ObservableCounter
	closes                               metric.Int64ObservableCounter
	handshakeTime                        metric.Float64ObservableCounter
	openConns, activeRequests            metric.Int64ObservableUpDownCounter
	keepAlive, poolEfficiency            metric.Float64ObservableGauge
	concurrencyLimit                     metric.Float64ObservableGauge

	// Per exit.
	exitHealthy, blockedTargets metric.Int64ObservableGauge
	ejections, latencyCount     metric.Int64ObservableCounter
	latencySum                  metric.Float64ObservableCounter
	latencyQuantile             metric.Float64ObservableGauge

	// Per Transport.
	unusedPrewarms, storeErrors, storeRecords, storeTurns metric.Int64ObservableCounter
	storeDegraded, up                                     metric.Int64ObservableGauge
}

// instruments creates the instruments on m and returns them all, for
// RegisterCallback.
func (o *observer) instruments(m metric.Meter) ([]metric.Observable, error) {
	var (
		all  []metric.Observable
		errs []error
	)
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		i, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		all = append(all, i)
		return i
	}
	fcounter := func(name, unit, desc string) metric.Float64ObservableCounter {
		i, err := m.Float64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		all = append(all, i)
		return i
	}
	updown := func(name, unit, desc string) metric.Int64ObservableUpDownCounter {
		i, err := m.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		all = append(all, i)
		return i
	}
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		i, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		all = append(all, i)
		return i
	}
	fgauge := func(name, unit, desc string) metric.Float64ObservableGauge {
		i, err := m.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		all = append(all, i)
		return i
	}

	o.requests = counter("warmpool.requests", "{request}",
		"Request attempts sent on a socket, by class: cold (paid for a handshake), prewarmed (first on a socket dialed in the background) or reused.")
	o.errors = counter("warmpool.errors", "{error}",
		"Failed request attempts (retried ones included), by kind (error.type).")
	o.retries = counter("warmpool.retries", "{request}",
		"Request attempts retried on another socket after a pooled socket failed.")
	o.responses = counter("warmpool.responses", "{response}",
		"Responses received, by status class (1xx to 5xx).")
	o.handshakes = counter("warmpool.handshakes", "{handshake}",
		"Handshakes, by path: request (attempts that paid for a handshake on their path) or background (sockets prewarmed off the request path).")
	o.handshakeTime = fcounter("warmpool.handshake.time", "s",
		"Time spent dialing (DNS, TCP, proxy, TLS), by path: request (on requests' paths) or background (prewarming).")
	o.resumptions = counter("warmpool.tls.resumptions", "{handshake}",
		"Handshakes that resumed an earlier TLS session.")
	o.dialErrors = counter("warmpool.dial.errors", "{error}",
		"Dials of new sockets that failed.")
	o.closes = counter("warmpool.socket.closes", "{socket}",
		"Sockets ended, by reason.")
	var oc httpconv.ClientOpenConnectionsObservable
	o.openConns = updown(oc.Name(), oc.Unit(),
		oc.Description()+" http.connection.state is active for busy and retiring sockets, idle for idle and spare ones; warmpool.socket.state tells the four apart.")
	var ar httpconv.ClientActiveRequestsObservable
	o.activeRequests = updown(ar.Name(), ar.Unit(),
		ar.Description()+" Request attempts in flight.")
	o.keepAlive = fgauge("warmpool.keepalive.ratio", "1",
		"Share of request attempts that reused a socket (0 to 1).")
	o.poolEfficiency = fgauge("warmpool.pool.efficiency", "1",
		"Open sockets divided by the peak of attempts in flight over the last 10 to 20 seconds (0 without recent requests).")
	o.concurrencyLimit = fgauge("warmpool.concurrency.limit", "{request}",
		"Adaptive limit of request attempts in flight (only with Config.Concurrency on).")
	o.exitHealthy = gauge("warmpool.exit.healthy", "1",
		"1 while the exit takes requests, 0 while it is ejected for repeated failures.")
	o.ejections = counter("warmpool.exit.ejections", "{ejection}",
		"Ejections of the exit for repeated failures.")
	o.blockedTargets = gauge("warmpool.exit.blocked_targets", "{target}",
		"Targets whose requests avoid the exit now because it was blocked there (Config.Blocks).")
	o.latencyCount = counter("warmpool.request.latency.count", "{request}",
		"Responses whose latency (from asking for a socket to the response headers) was recorded, by class: warm (reused or prewarmed socket) or cold.")
	o.latencySum = fcounter("warmpool.request.latency.sum", "s",
		"Sum of the latencies (from asking for a socket to the response headers), by class: warm (reused or prewarmed socket) or cold.")
	o.latencyQuantile = fgauge("warmpool.request.latency.quantile", "s",
		"Quantiles 0.5, 0.9 and 0.99 of the latency from asking for a socket to the response headers, by class: warm (reused or prewarmed socket) or cold; absent before the first response.")
	o.unusedPrewarms = counter("warmpool.unused_prewarms", "{socket}",
		"Sockets dialed in the background that closed without carrying a request.")
	o.storeDegraded = gauge("warmpool.store.degraded", "1",
		"1 while Config.Sharing.Store fails or does not answer in time (the Transport goes on with what it knows).")
	o.storeErrors = counter("warmpool.store.errors", "{error}",
		"Failed calls to Config.Sharing.Store.")
	o.storeRecords = counter("warmpool.store.records", "{record}",
		"Records shared through Config.Sharing.Store, by direction: put (learned here), adopted (learned by others) or malformed (skipped: undecodable or out of bounds).")
	o.storeTurns = counter("warmpool.store.politeness_turns", "{turn}",
		"Politeness turns, by source: fleet (reserved from the store) or local (the store failed).")
	o.up = gauge("warmpool.up", "1",
		"1: the warmpool Transport is being observed.")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return all, nil
}

// observe takes one Snapshot and observes every instrument from it.
func (o *observer) observe(_ context.Context, obs metric.Observer) error {
	snap := o.snapshot()
	obs.ObserveInt64(o.up, 1, o.with(nil))

	if o.targets {
		for _, p := range byRequests(snap.Pairs, func(a, b warmpool.PairKey) int {
			return cmp.Or(strings.Compare(a.Exit, b.Exit), strings.Compare(string(a.Target), string(b.Target)))
		}) {
			target := label(string(p.key.Target))
			pool := []attribute.KeyValue{exitKey.String(label(p.key.Exit)), targetKey.String(target)}
			o.observeStats(obs, &p.stats, pool, slices.Concat(pool, serverAttrs(target)))
		}
	} else {
		for _, p := range byRequests(exitStats(snap.Exits), strings.Compare) {
			pool := []attribute.KeyValue{exitKey.String(label(p.key))}
			o.observeStats(obs, &p.stats, pool, pool)
		}
	}

	blocked := map[string]int64{}
	for _, bs := range snap.Blocks {
		if !bs.AvoidedUntil.IsZero() && bs.AvoidedUntil.After(snap.Taken) {
			blocked[bs.Exit]++
		}
	}
	for _, name := range slices.Sorted(maps.Keys(snap.Exits)) {
		es := snap.Exits[name]
		exit := exitKey.String(label(name))
		obs.ObserveInt64(o.exitHealthy, boolInt(es.Healthy), o.with(nil, exit))
		obs.ObserveInt64(o.ejections, int64(es.Ejections), o.with(nil, exit))
		obs.ObserveInt64(o.blockedTargets, blocked[name], o.with(nil, exit))
		o.observeLatency(obs, es.WarmLatency, exit, "warm")
		o.observeLatency(obs, es.ColdLatency, exit, "cold")
	}

	o.observeConcurrency(obs, snap.Concurrency)
	obs.ObserveInt64(o.unusedPrewarms, int64(snap.Total.UnusedPrewarms), o.with(nil))

	if st := snap.Store; st != nil {
		obs.ObserveInt64(o.storeDegraded, boolInt(st.Degraded), o.with(nil))
		obs.ObserveInt64(o.storeErrors, int64(st.Errors), o.with(nil))
		obs.ObserveInt64(o.storeRecords, int64(st.Put), o.with(nil, directionKey.String("put")))
		obs.ObserveInt64(o.storeRecords, int64(st.Adopted), o.with(nil, directionKey.String("adopted")))
		obs.ObserveInt64(o.storeRecords, int64(st.Malformed), o.with(nil, directionKey.String("malformed")))
		obs.ObserveInt64(o.storeTurns, int64(st.FleetTurns), o.with(nil, sourceKey.String("fleet")))
		obs.ObserveInt64(o.storeTurns, int64(st.LocalTurns), o.with(nil, sourceKey.String("local")))
	}
	return nil
}

// observeStats observes the instruments of one pool: pool are its
// warmpool.exit (and warmpool.target) attributes, server the same with the
// semantic conventions' server.address, server.port and url.scheme, for the
// http.client.* instruments.
func (o *observer) observeStats(obs metric.Observer, st *warmpool.Stats, pool, server []attribute.KeyValue) {
	obs.ObserveInt64(o.requests, int64(st.Cold), o.with(pool, classKey.String("cold")))
	obs.ObserveInt64(o.requests, int64(st.Prewarmed), o.with(pool, classKey.String("prewarmed")))
	obs.ObserveInt64(o.requests, int64(st.Reused), o.with(pool, classKey.String("reused")))
	for kind, n := range st.ErrorKinds {
		obs.ObserveInt64(o.errors, int64(n), o.with(pool, semconv.ErrorTypeKey.String(label(string(kind)))))
	}
	obs.ObserveInt64(o.retries, int64(st.Retries), o.with(pool))
	for class, n := range st.Statuses {
		obs.ObserveInt64(o.responses, int64(n), o.with(pool, statusClassKey.String(label(class))))
	}

	obs.ObserveInt64(o.handshakes, int64(st.Cold), o.with(pool, pathKey.String("request")))
	obs.ObserveInt64(o.handshakes, int64(st.Prewarms), o.with(pool, pathKey.String("background")))
	obs.ObserveFloat64(o.handshakeTime, st.HandshakeTax.Seconds(), o.with(pool, pathKey.String("request")))
	obs.ObserveFloat64(o.handshakeTime, st.PrewarmTime.Seconds(), o.with(pool, pathKey.String("background")))
	obs.ObserveInt64(o.resumptions, int64(st.Resumed), o.with(pool))
	obs.ObserveInt64(o.dialErrors, int64(st.DialErrors), o.with(pool))
	for reason, n := range st.Closes {
		obs.ObserveInt64(o.closes, int64(n), o.with(pool, reasonKey.String(label(string(reason)))))
	}

	// The semantic conventions know two states: a socket is active while
	// it carries a request or is retiring (it takes no new one), idle
	// while it waits for one, spares included.
	active, idle := semconv.HTTPConnectionStateActive, semconv.HTTPConnectionStateIdle
	obs.ObserveInt64(o.openConns, int64(st.Sockets.Busy), o.with(server, active, socketStateKey.String("busy")))
	obs.ObserveInt64(o.openConns, int64(st.Sockets.Idle), o.with(server, idle, socketStateKey.String("idle")))
	obs.ObserveInt64(o.openConns, int64(st.Sockets.Spares), o.with(server, idle, socketStateKey.String("spare")))
	obs.ObserveInt64(o.openConns, int64(st.Sockets.Retiring), o.with(server, active, socketStateKey.String("retiring")))
	obs.ObserveInt64(o.activeRequests, int64(st.InFlight), o.with(server))
	obs.ObserveFloat64(o.keepAlive, st.KeepAliveRatio, o.with(pool))
	obs.ObserveFloat64(o.poolEfficiency, st.PoolEfficiency, o.with(pool))
}

// quantiles are the quantiles of warmpool.request.latency.quantile, as
// attribute values and as the LatencySummary fields that hold them.
var quantiles = [...]struct {
	name  string
	value func(warmpool.LatencySummary) float64
}{
	{"0.5", func(l warmpool.LatencySummary) float64 { return l.P50.Seconds() }},
	{"0.9", func(l warmpool.LatencySummary) float64 { return l.P90.Seconds() }},
	{"0.99", func(l warmpool.LatencySummary) float64 { return l.P99.Seconds() }},
}

// observeLatency observes one exit's latency distribution: its count, its
// sum and, once it has observations, its quantiles. (OpenTelemetry has no
// asynchronous histogram, and the Snapshot keeps quantiles, not buckets.)
func (o *observer) observeLatency(obs metric.Observer, l warmpool.LatencySummary, exit attribute.KeyValue, class string) {
	attrs := []attribute.KeyValue{exit, classKey.String(class)}
	obs.ObserveInt64(o.latencyCount, int64(l.Count), o.with(attrs))
	obs.ObserveFloat64(o.latencySum, l.Mean.Seconds()*float64(l.Count), o.with(attrs))
	if l.Count == 0 {
		return
	}
	for _, q := range quantiles {
		obs.ObserveFloat64(o.latencyQuantile, q.value(l), o.with(attrs, quantileKey.String(q.name)))
	}
}

// observeConcurrency observes the adaptive limits, one per exit and target
// as warmpool reports them; with targets off, an exit's limits are summed.
// (Limits whose exit names repair to the same value are summed too, so
// that no attribute set is observed twice.)
func (o *observer) observeConcurrency(obs metric.Observer, list []warmpool.ConcurrencyStats) {
	order, limits := metricrows.ConcurrencyLimits(list, o.targets)
	for _, k := range order {
		pool := []attribute.KeyValue{exitKey.String(k.Exit)}
		if o.targets {
			pool = append(pool, targetKey.String(k.Target))
		}
		obs.ObserveFloat64(o.concurrencyLimit, limits[k], o.with(pool))
	}
}

// with returns the attribute set of one observation: WithAttributes's,
// then base, then extra.
func (o *observer) with(base []attribute.KeyValue, extra ...attribute.KeyValue) metric.ObserveOption {
	kvs := make([]attribute.KeyValue, 0, len(o.attrs)+len(base)+len(extra))
	kvs = append(append(append(kvs, o.attrs...), base...), extra...)
	return metric.WithAttributeSet(attribute.NewSet(kvs...))
}

// row is one pool's Stats.
type row[K any] struct {
	key   K
	stats warmpool.Stats
}

// byRequests returns the rows of m, the pools with the most requests first
// (ties by key): with more attribute sets than an SDK's cardinality limit
// (2,000 per instrument by default), the SDK folds the sets observed last
// into its overflow set, and those are then the least used pools.
func byRequests[K comparable](m map[K]warmpool.Stats, compare func(a, b K) int) []row[K] {
	rows := make([]row[K], 0, len(m))
	for k, st := range m {
		rows = append(rows, row[K]{key: k, stats: st})
	}
	slices.SortFunc(rows, func(a, b row[K]) int {
		return cmp.Or(cmp.Compare(b.stats.Requests, a.stats.Requests), compare(a.key, b.key))
	})
	return rows
}

func exitStats(exits map[string]warmpool.ExitStats) map[string]warmpool.Stats {
	m := make(map[string]warmpool.Stats, len(exits))
	for name, es := range exits {
		m[name] = es.Stats
	}
	return m
}

// serverAttrs returns the semantic conventions' server.address,
// server.port and url.scheme of target ("https://example.com:443"), or
// none for a target that has no host and port (warmpool.OtherTargets).
func serverAttrs(target string) []attribute.KeyValue {
	scheme, hostport, ok := strings.Cut(target, "://")
	if !ok {
		return nil
	}
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil
	}
	return []attribute.KeyValue{
		semconv.ServerAddress(host),
		semconv.ServerPort(port),
		semconv.URLScheme(scheme),
	}
}

// label makes s valid UTF-8, as attribute values must be, the way the
// Prometheus collector repairs its label values.
// label repairs s into a valid attribute value (metricrows.Label).
var label = metricrows.Label

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
