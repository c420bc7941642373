package prometheus

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/metricrows"
)

// DefaultNamespace is the prefix of every metric name unless WithNamespace
// says otherwise.
const DefaultNamespace = "warmpool"

// Option configures NewCollector.
type Option func(*options)

type options struct {
	namespace   string
	constLabels prometheus.Labels
	targets     bool
}

// WithNamespace sets the prefix of every metric name (default "warmpool").
// An empty namespace leaves the names unprefixed ("requests_total").
func WithNamespace(namespace string) Option {
	return func(o *options) { o.namespace = namespace }
}

// WithConstLabels adds labels with fixed values to every metric, for example
// to tell apart several Transports registered in one registry. Their names
// must not be one of the collector's own labels (exit, target, class, kind,
// code_class, path, reason, state, quantile): registering such a collector
// fails.
func WithConstLabels(labels prometheus.Labels) Option {
	return func(o *options) {
		o.constLabels = make(prometheus.Labels, len(labels))
		for k, v := range labels {
			o.constLabels[k] = v
		}
	}
}

// WithTargets turns the per-target series on (the default) or off. With
// targets on, the per-socket-pool metrics carry the labels exit and target,
// whose value is a warmpool.Target ("https://example.com:443"). With targets
// off, every such metric carries exit only, summed over the exit's targets
// (from Snapshot.Exits instead of Snapshot.Pairs).
func WithTargets(on bool) Option {
	return func(o *options) { o.targets = on }
}

// NewCollector returns a prometheus.Collector that reads t.Snapshot() on each
// scrape and reports it as the metrics listed in the package documentation.
// Register it once per Transport (with WithConstLabels to tell several
// Transports apart).
func NewCollector(t *warmpool.Transport, opts ...Option) prometheus.Collector {
	return newCollector(t.Snapshot, opts...)
}

// collector turns one Snapshot per scrape into constant metrics.
type collector struct {
	snapshot func() warmpool.Snapshot
	targets  bool

	// Per pool (exit and target, or exit only with targets off).
	requests, errors, retries, responses                 *prometheus.Desc
	handshakes, handshakeSeconds, resumed, dialErrors    *prometheus.Desc
	closes, sockets, inFlight, keepAlive, poolEfficiency *prometheus.Desc
	concurrencyLimit                                     *prometheus.Desc
	exitHealthy, exitEjections, latency, up              *prometheus.Desc
	blockedTargets, unusedPrewarms                       *prometheus.Desc
	storeDegraded, storeErrors, storeRecords, storeTurns *prometheus.Desc
	allDescs                                             []*prometheus.Desc
}

func newCollector(snapshot func() warmpool.Snapshot, opts ...Option) *collector {
	o := options{namespace: DefaultNamespace, targets: true}
	for _, opt := range opts {
		opt(&o)
	}
	c := &collector{snapshot: snapshot, targets: o.targets}
	pool := []string{"exit", "target"}
	if !o.targets {
		pool = []string{"exit"}
	}
	with := func(extra ...string) []string {
		return append(append([]string(nil), pool...), extra...)
	}
	desc := func(name, help string, labels []string) *prometheus.Desc {
		d := prometheus.NewDesc(prometheus.BuildFQName(o.namespace, "", name), help, labels, o.constLabels)
		c.allDescs = append(c.allDescs, d)
		return d
	}

	c.requests = desc("requests_total",
		"Request attempts sent on a socket, by class: cold (paid for a handshake), prewarmed (first on a socket dialed in the background) or reused.",
		with("class"))
	c.errors = desc("errors_total",
		"Failed request attempts (retried ones included), by kind.",
		with("kind"))
	c.retries = desc("retries_total",
		"Request attempts retried on another socket after a pooled socket failed.",
		with())
	c.responses = desc("responses_total",
		"Responses received, by status class (1xx to 5xx).",
		with("code_class"))
	c.handshakes = desc("handshakes_total",
		"Handshakes, by path: request (attempts that paid for a handshake on their path) or background (sockets prewarmed off the request path).",
		with("path"))
	c.handshakeSeconds = desc("handshake_seconds_total",
		"Time spent dialing (DNS, TCP, proxy, TLS), by path: request (on requests' paths) or background (prewarming).",
		with("path"))
	c.resumed = desc("tls_resumed_total",
		"Handshakes that resumed an earlier TLS session.",
		with())
	c.dialErrors = desc("dial_errors_total",
		"Dials of new sockets that failed.",
		with())
	c.closes = desc("socket_closes_total",
		"Sockets ended, by reason.",
		with("reason"))
	c.sockets = desc("sockets",
		"Open sockets, by state: busy, idle, spare (prewarmed, not used yet) or retiring.",
		with("state"))
	c.inFlight = desc("in_flight",
		"Request attempts in flight.",
		with())
	c.keepAlive = desc("keepalive_ratio",
		"Share of request attempts that reused a socket (0 to 1).",
		with())
	c.poolEfficiency = desc("pool_efficiency",
		"Open sockets divided by the peak of attempts in flight over the last 10 to 20 seconds (0 without recent requests).",
		with())
	c.concurrencyLimit = desc("concurrency_limit",
		"Adaptive limit of request attempts in flight (only with Config.Concurrency on).",
		with())
	c.exitHealthy = desc("exit_healthy",
		"1 while the exit takes requests, 0 while it is ejected for repeated failures.",
		[]string{"exit"})
	c.exitEjections = desc("exit_ejections_total",
		"Ejections of the exit for repeated failures.",
		[]string{"exit"})
	c.latency = desc("request_latency_seconds",
		"Time from asking for a socket to the response headers, by class: warm (reused or prewarmed socket) or cold.",
		[]string{"exit", "class"})
	c.blockedTargets = desc("exit_blocked_targets",
		"Targets whose requests avoid the exit now because it was blocked there (Config.Blocks).",
		[]string{"exit"})
	c.unusedPrewarms = desc("unused_prewarms_total",
		"Sockets dialed in the background that closed without carrying a request.",
		nil)
	c.storeDegraded = desc("store_degraded",
		"1 while Config.Sharing.Store fails or does not answer in time (the Transport goes on with what it knows).",
		nil)
	c.storeErrors = desc("store_errors_total",
		"Failed calls to Config.Sharing.Store.",
		nil)
	c.storeRecords = desc("store_records_total",
		"Records shared through Config.Sharing.Store, by direction: put (learned here), adopted (learned by others) or malformed (skipped: undecodable or out of bounds).",
		[]string{"direction"})
	c.storeTurns = desc("store_politeness_turns_total",
		"Politeness turns, by source: fleet (reserved from the store) or local (the store failed).",
		[]string{"source"})
	c.up = desc("up",
		"1: the warmpool Transport is being scraped.",
		nil)
	return c
}

// Describe sends every metric description of the collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.allDescs {
		ch <- d
	}
}

// Collect takes one Snapshot and sends its metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.snapshot()
	emit(ch, c.up, prometheus.GaugeValue, 1)

	if c.targets {
		for key, st := range snap.Pairs {
			c.collectStats(ch, &st, label(key.Exit), label(string(key.Target)))
		}
	} else {
		for name, es := range snap.Exits {
			c.collectStats(ch, &es.Stats, label(name))
		}
	}

	for name, es := range snap.Exits {
		exit := label(name)
		emit(ch, c.exitHealthy, prometheus.GaugeValue, boolFloat(es.Healthy), exit)
		emit(ch, c.exitEjections, prometheus.CounterValue, float64(es.Ejections), exit)
		c.collectLatency(ch, es.WarmLatency, exit, "warm")
		c.collectLatency(ch, es.ColdLatency, exit, "cold")
	}

	c.collectConcurrency(ch, snap.Concurrency)
	emit(ch, c.unusedPrewarms, prometheus.CounterValue, float64(snap.Total.UnusedPrewarms))

	blocked := map[string]int{}
	for _, bs := range snap.Blocks {
		if !bs.AvoidedUntil.IsZero() && bs.AvoidedUntil.After(snap.Taken) {
			blocked[bs.Exit]++
		}
	}
	for name := range snap.Exits {
		emit(ch, c.blockedTargets, prometheus.GaugeValue, float64(blocked[name]), label(name))
	}
	if st := snap.Store; st != nil {
		emit(ch, c.storeDegraded, prometheus.GaugeValue, boolFloat(st.Degraded))
		emit(ch, c.storeErrors, prometheus.CounterValue, float64(st.Errors))
		emit(ch, c.storeRecords, prometheus.CounterValue, float64(st.Put), "put")
		emit(ch, c.storeRecords, prometheus.CounterValue, float64(st.Adopted), "adopted")
		emit(ch, c.storeRecords, prometheus.CounterValue, float64(st.Malformed), "malformed")
		emit(ch, c.storeTurns, prometheus.CounterValue, float64(st.FleetTurns), "fleet")
		emit(ch, c.storeTurns, prometheus.CounterValue, float64(st.LocalTurns), "local")
	}
}

// collectStats sends the metrics of one pool: lvs are its exit (and target)
// label values.
func (c *collector) collectStats(ch chan<- prometheus.Metric, st *warmpool.Stats, lvs ...string) {
	with := func(v string) []string { return append(lvs[:len(lvs):len(lvs)], v) }

	emit(ch, c.requests, prometheus.CounterValue, float64(st.Cold), with("cold")...)
	emit(ch, c.requests, prometheus.CounterValue, float64(st.Prewarmed), with("prewarmed")...)
	emit(ch, c.requests, prometheus.CounterValue, float64(st.Reused), with("reused")...)
	for kind, n := range st.ErrorKinds {
		emit(ch, c.errors, prometheus.CounterValue, float64(n), with(label(string(kind)))...)
	}
	emit(ch, c.retries, prometheus.CounterValue, float64(st.Retries), lvs...)
	for class, n := range st.Statuses {
		emit(ch, c.responses, prometheus.CounterValue, float64(n), with(label(class))...)
	}

	emit(ch, c.handshakes, prometheus.CounterValue, float64(st.Cold), with("request")...)
	emit(ch, c.handshakes, prometheus.CounterValue, float64(st.Prewarms), with("background")...)
	emit(ch, c.handshakeSeconds, prometheus.CounterValue, st.HandshakeTax.Seconds(), with("request")...)
	emit(ch, c.handshakeSeconds, prometheus.CounterValue, st.PrewarmTime.Seconds(), with("background")...)
	emit(ch, c.resumed, prometheus.CounterValue, float64(st.Resumed), lvs...)
	emit(ch, c.dialErrors, prometheus.CounterValue, float64(st.DialErrors), lvs...)
	for reason, n := range st.Closes {
		emit(ch, c.closes, prometheus.CounterValue, float64(n), with(label(string(reason)))...)
	}

	emit(ch, c.sockets, prometheus.GaugeValue, float64(st.Sockets.Busy), with("busy")...)
	emit(ch, c.sockets, prometheus.GaugeValue, float64(st.Sockets.Idle), with("idle")...)
	emit(ch, c.sockets, prometheus.GaugeValue, float64(st.Sockets.Spares), with("spare")...)
	emit(ch, c.sockets, prometheus.GaugeValue, float64(st.Sockets.Retiring), with("retiring")...)
	emit(ch, c.inFlight, prometheus.GaugeValue, float64(st.InFlight), lvs...)
	emit(ch, c.keepAlive, prometheus.GaugeValue, st.KeepAliveRatio, lvs...)
	emit(ch, c.poolEfficiency, prometheus.GaugeValue, st.PoolEfficiency, lvs...)
}

// summaryQuantiles are the quantiles of warmpool_request_latency_seconds.
var summaryQuantiles = [...]float64{0.5, 0.9, 0.99}

// collectLatency sends one exit's latency distribution as a summary.
// Quantiles are NaN without observations, as for a prometheus.Summary.
func (c *collector) collectLatency(ch chan<- prometheus.Metric, l warmpool.LatencySummary, exit, class string) {
	q := make(map[float64]float64, len(summaryQuantiles))
	values := [...]float64{l.P50.Seconds(), l.P90.Seconds(), l.P99.Seconds()}
	for i, quantile := range summaryQuantiles {
		if l.Count == 0 {
			q[quantile] = math.NaN()
		} else {
			q[quantile] = values[i]
		}
	}
	sum := l.Mean.Seconds() * float64(l.Count)
	m, err := prometheus.NewConstSummary(c.latency, l.Count, sum, q, exit, class)
	if err != nil {
		m = prometheus.NewInvalidMetric(c.latency, err)
	}
	ch <- m
}

// collectConcurrency sends the adaptive limits, one series per exit and
// target as warmpool reports them; with targets off, an exit's limits are
// summed. (Limits whose exit names repair to the same label value are
// summed too, so that no series is sent twice.)
func (c *collector) collectConcurrency(ch chan<- prometheus.Metric, list []warmpool.ConcurrencyStats) {
	if len(list) == 0 {
		return
	}
	order, limits := metricrows.ConcurrencyLimits(list, c.targets)
	for _, k := range order {
		if c.targets {
			emit(ch, c.concurrencyLimit, prometheus.GaugeValue, limits[k], k.Exit, k.Target)
		} else {
			emit(ch, c.concurrencyLimit, prometheus.GaugeValue, limits[k], k.Exit)
		}
	}
}

// emit sends one constant metric, or an invalid metric carrying the error
// (which makes the scrape report it rather than panic).
func emit(ch chan<- prometheus.Metric, d *prometheus.Desc, vt prometheus.ValueType, v float64, lvs ...string) {
	m, err := prometheus.NewConstMetric(d, vt, v, lvs...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}

// label makes s a valid label value: Prometheus label values must be UTF-8.
// label repairs s into a valid label value (metricrows.Label).
var label = metricrows.Label

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
