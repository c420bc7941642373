package otelmetrics

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testenv"
	"github.com/warmpool/warmpool/internal/testproxy"
	wpprom "github.com/warmpool/warmpool/prometheus"
)

// promNames maps each instrument to the Prometheus collector's metric (the
// latency summary's _count, _sum and quantile series are three
// instruments): the table of the package documentation.
var promNames = map[string]string{
	"warmpool.requests":                 "warmpool_requests_total",
	"warmpool.errors":                   "warmpool_errors_total",
	"warmpool.retries":                  "warmpool_retries_total",
	"warmpool.responses":                "warmpool_responses_total",
	"warmpool.handshakes":               "warmpool_handshakes_total",
	"warmpool.handshake.time":           "warmpool_handshake_seconds_total",
	"warmpool.tls.resumptions":          "warmpool_tls_resumed_total",
	"warmpool.dial.errors":              "warmpool_dial_errors_total",
	"warmpool.socket.closes":            "warmpool_socket_closes_total",
	"http.client.open_connections":      "warmpool_sockets",
	"http.client.active_requests":       "warmpool_in_flight",
	"warmpool.keepalive.ratio":          "warmpool_keepalive_ratio",
	"warmpool.pool.efficiency":          "warmpool_pool_efficiency",
	"warmpool.concurrency.limit":        "warmpool_concurrency_limit",
	"warmpool.exit.healthy":             "warmpool_exit_healthy",
	"warmpool.exit.ejections":           "warmpool_exit_ejections_total",
	"warmpool.exit.blocked_targets":     "warmpool_exit_blocked_targets",
	"warmpool.request.latency.count":    "warmpool_request_latency_seconds_count",
	"warmpool.request.latency.sum":      "warmpool_request_latency_seconds_sum",
	"warmpool.request.latency.quantile": "warmpool_request_latency_seconds",
	"warmpool.unused_prewarms":          "warmpool_unused_prewarms_total",
	"warmpool.store.degraded":           "warmpool_store_degraded",
	"warmpool.store.errors":             "warmpool_store_errors_total",
	"warmpool.store.records":            "warmpool_store_records_total",
	"warmpool.store.politeness_turns":   "warmpool_store_politeness_turns_total",
	"warmpool.up":                       "warmpool_up",
}

// promLabels maps each attribute key to the collector's label.
var promLabels = map[string]string{
	"warmpool.exit":                  "exit",
	"warmpool.target":                "target",
	"warmpool.request.class":         "class",
	"error.type":                     "kind",
	"warmpool.response.status_class": "code_class",
	"warmpool.handshake.path":        "path",
	"warmpool.socket.close_reason":   "reason",
	"warmpool.socket.state":          "state",
	"warmpool.quantile":              "quantile",
	"warmpool.store.direction":       "direction",
	"warmpool.store.source":          "source",
}

// promFamilies are every metric family of the Prometheus collector.
var promFamilies = []string{
	"warmpool_concurrency_limit", "warmpool_dial_errors_total", "warmpool_errors_total",
	"warmpool_exit_blocked_targets", "warmpool_exit_ejections_total", "warmpool_exit_healthy",
	"warmpool_handshake_seconds_total", "warmpool_handshakes_total", "warmpool_in_flight",
	"warmpool_keepalive_ratio", "warmpool_pool_efficiency", "warmpool_request_latency_seconds",
	"warmpool_requests_total", "warmpool_responses_total", "warmpool_retries_total",
	"warmpool_socket_closes_total", "warmpool_sockets", "warmpool_store_degraded",
	"warmpool_store_errors_total", "warmpool_store_politeness_turns_total", "warmpool_store_records_total",
	"warmpool_tls_resumed_total", "warmpool_unused_prewarms_total", "warmpool_up",
}

// TestMappingIsOneToOne: every instrument has its Prometheus metric and
// every Prometheus family its instruments.
func TestMappingIsOneToOne(t *testing.T) {
	assert.ElementsMatch(t, slices.Collect(maps.Keys(instrumentSpecs)), slices.Collect(maps.Keys(promNames)))
	families := map[string]bool{}
	for _, name := range promNames {
		for _, suffix := range []string{"_count", "_sum"} {
			if base, ok := cutSuffix(name, suffix); ok && base == "warmpool_request_latency_seconds" {
				name = base
			}
		}
		families[name] = true
	}
	assert.ElementsMatch(t, promFamilies, slices.Collect(maps.Keys(families)))
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

// flattenProm turns a gathered registry into one value per series, named as
// the collector names them; a summary gives its _count, its _sum and its
// quantiles (those NaN, before the first observation, are left out: the
// instruments observe none then).
func flattenProm(t *testing.T, mfs []*dto.MetricFamily) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[series(mf.GetName(), labels)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[series(mf.GetName(), labels)] = m.GetGauge().GetValue()
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				out[series(mf.GetName()+"_count", labels)] = float64(s.GetSampleCount())
				out[series(mf.GetName()+"_sum", labels)] = s.GetSampleSum()
				for _, q := range s.GetQuantile() {
					if math.IsNaN(q.GetValue()) {
						assert.Zero(t, s.GetSampleCount(), "a NaN quantile only before the first observation")
						continue
					}
					ql := maps.Clone(labels)
					ql["quantile"] = strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)
					out[series(mf.GetName(), ql)] = q.GetValue()
				}
			default:
				t.Fatalf("%s: unexpected type %v", mf.GetName(), mf.GetType())
			}
		}
	}
	return out
}

// flattenOTel turns collected instruments into one value per series, named
// as the Prometheus collector names them (promNames, promLabels). The
// attributes with no label of their own are checked against those they
// derive from, then left out: http.connection.state (from
// warmpool.socket.state) and server.address, server.port and url.scheme
// (from warmpool.target).
func flattenOTel(t *testing.T, ms map[string]*metricData) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for name, md := range ms {
		pname, ok := promNames[name]
		require.True(t, ok, "instrument %s has no Prometheus name", name)
		for _, p := range md.points {
			labels := map[string]string{}
			for _, kv := range p.attrs.ToSlice() {
				k, v := string(kv.Key), kv.Value.Emit()
				switch k {
				case "http.connection.state":
					want := map[string]string{"busy": "active", "retiring": "active", "idle": "idle", "spare": "idle"}
					assert.Equal(t, want[p.attr("warmpool.socket.state")], v, name)
					continue
				case "server.address", "server.port", "url.scheme":
					server := map[string]string{}
					for _, skv := range serverAttrs(p.attr("warmpool.target")) {
						server[string(skv.Key)] = skv.Value.Emit()
					}
					assert.Equal(t, server[k], v, "%s %s", name, k)
					continue
				}
				label, ok := promLabels[k]
				require.True(t, ok, "attribute %s of %s has no Prometheus label", k, name)
				labels[label] = v
			}
			key := series(pname, labels)
			if _, dup := out[key]; dup {
				t.Fatalf("%s observed twice", key)
			}
			out[key] = p.value
		}
	}
	return out
}

// agree gathers reg and collects r until two gathers around one collection
// are equal (nothing changed meanwhile), and returns that gather and the
// collection, both flattened, and the families gathered.
func agree(t *testing.T, reg *prometheus.Registry, r *sdkmetric.ManualReader) (prom, otel map[string]float64, families []string) {
	t.Helper()
	gather := func() ([]*dto.MetricFamily, map[string]float64) {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		return mfs, flattenProm(t, mfs)
	}
	for i := 0; ; i++ {
		mfs, before := gather()
		otel := flattenOTel(t, collect(t, r))
		_, after := gather()
		if maps.Equal(before, after) {
			for _, mf := range mfs {
				families = append(families, mf.GetName())
			}
			return before, otel, families
		}
		require.Less(t, i, 500, "the Transport never settled")
		time.Sleep(10 * time.Millisecond)
	}
}

// downStore is a Store that always fails: the Transport then reports
// itself degraded and counts the errors.
type downStore struct{}

var errDown = errors.New("store down")

func (downStore) Put(context.Context, []warmpool.Record) error { return errDown }
func (downStore) Changes(context.Context, uint64) ([]warmpool.Record, uint64, error) {
	return nil, 0, errDown
}
func (downStore) Close() error { return nil }

// TestAgreesWithPrometheus registers one Transport with the Prometheus
// collector and with Register, and compares every figure of the two at one
// moment: every series of one has its counterpart in the other, with the
// same value. The Transport has two exits (one a proxy that the target
// blocks), a target that resets its sockets, 5xx responses, adaptive
// concurrency and a store that fails, so that every family has series.
func TestAgreesWithPrometheus(t *testing.T) {
	// a answers 403 to the proxy's address (a block, since it answers 200
	// directly) and 500 on /500; b resets its sockets' third request.
	a := testenv.StartTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		switch {
		case ip == "127.0.0.2":
			w.WriteHeader(http.StatusForbidden)
		case r.URL.Path == "/500":
			w.WriteHeader(http.StatusInternalServerError)
		}
		_, _ = io.WriteString(w, "ok")
	})})
	b := testenv.StartTarget(t, target.Config{ResetAfter: 2})
	px := testenv.StartProxy(t, testproxy.Config{SourceIP: "127.0.0.2"})
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(a.CertPEM()))
	require.True(t, roots.AppendCertsFromPEM(b.CertPEM()))
	rt, err := warmpool.New(warmpool.Config{
		Exits:             []warmpool.Exit{{}, {Name: "proxy", Proxy: px.URLString()}},
		RotateEachRequest: true,
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		Budget:            warmpool.Budget{MaxRequests: 5},
		Concurrency:       warmpool.Concurrency{Enable: true},
		Sharing:           warmpool.Sharing{Store: downStore{}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rt.Close() })

	client := &http.Client{Transport: rt, Timeout: 10 * time.Second}
	send := func(url string, n int) {
		for range n {
			// Errors and statuses are what the figures count: any will do.
			if resp, err := client.Get(url); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		}
	}
	send(a.URL()+"/", 12)
	send(a.URL()+"/500", 2)
	send(b.URL()+"/", 8)
	awaitSnapshot(t, rt, func(s warmpool.Snapshot) bool { return s.Total.InFlight == 0 })

	for _, targets := range []bool{true, false} {
		t.Run("targets="+strconv.FormatBool(targets), func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			require.NoError(t, reg.Register(wpprom.NewCollector(rt, wpprom.WithTargets(targets))))
			r, mp := newReader(t)
			otelReg, err := Register(rt, mp, WithTargets(targets))
			require.NoError(t, err)
			t.Cleanup(func() { _ = otelReg.Unregister() })

			prom, otel, families := agree(t, reg, r)
			assert.ElementsMatch(t, promFamilies, families, "every family has series")
			assert.Empty(t, diffSeries(prom, otel), "series that differ: Prometheus's, then OpenTelemetry's")

			// The scenario is what it says.
			total := func(name string, labels map[string]string) float64 {
				var n float64
				for _, mf := range must(reg.Gather()) {
					if mf.GetName() != name {
						continue
					}
					for _, m := range mf.GetMetric() {
						match := true
						for _, lp := range m.GetLabel() {
							if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
								match = false
							}
						}
						if match {
							n += m.GetCounter().GetValue() + m.GetGauge().GetValue()
						}
					}
				}
				return n
			}
			assert.Positive(t, total("warmpool_errors_total", map[string]string{"kind": "reset"}))
			assert.Positive(t, total("warmpool_responses_total", map[string]string{"code_class": "4xx"}))
			assert.Positive(t, total("warmpool_responses_total", map[string]string{"code_class": "5xx"}))
			assert.Equal(t, 1.0, total("warmpool_exit_blocked_targets", map[string]string{"exit": "proxy"}))
			assert.Positive(t, total("warmpool_store_errors_total", nil))
			assert.Equal(t, 1.0, total("warmpool_store_degraded", nil))
			assert.Greater(t, len(prom), 60)
		})
	}
}

// diffSeries lists the series whose values differ between a and b, or that
// only one has, one line each.
func diffSeries(a, b map[string]float64) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if v, ok := b[k]; !ok {
			out = append(out, fmt.Sprintf("%s %v, missing", k, a[k]))
		} else if v != a[k] {
			out = append(out, fmt.Sprintf("%s %v, %v", k, a[k], v))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("%s missing, %v", k, b[k]))
		}
	}
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
