package otelmetrics

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/wptest"
)

// The tests use warmpool's loopback test servers (internal/target,
// internal/testenv, internal/testproxy, internal/fakedns): the go tool lets
// this module import them because its path is inside the root module's.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The helpers shared with the other modules' tests (internal/wptest).
var (
	startTarget   = wptest.StartTarget
	targetOf      = wptest.TargetOf
	get           = wptest.Get
	awaitSnapshot = wptest.AwaitSnapshot
)

// quiet reports whether nothing the instruments report changed between
// snapshots a and b.
func quiet(a, b warmpool.Snapshot) bool {
	return reflect.DeepEqual(a.Pairs, b.Pairs) && reflect.DeepEqual(a.Exits, b.Exits) &&
		reflect.DeepEqual(a.Concurrency, b.Concurrency) && reflect.DeepEqual(a.Store, b.Store) &&
		reflect.DeepEqual(a.Blocks, b.Blocks) && a.Total.UnusedPrewarms == b.Total.UnusedPrewarms
}

// newReader returns a ManualReader on a new MeterProvider, shut down at the
// end of the test.
func newReader(t *testing.T, opts ...sdkmetric.Option) (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(append(opts, sdkmetric.WithReader(r))...)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return r, mp
}

// kind is how an instrument's data comes out of the SDK.
type kind string

const (
	counterKind kind = "counter" // monotonic cumulative sum
	updownKind  kind = "updown"  // non-monotonic cumulative sum
	gaugeKind   kind = "gauge"
)

// point is one data point: its attributes and its value.
type point struct {
	attrs attribute.Set
	value float64
}

// attr returns the value of key as text ("" when absent).
func (p point) attr(key string) string {
	v, _ := p.attrs.Value(attribute.Key(key))
	return v.Emit()
}

// keys returns the attribute keys of p, sorted.
func (p point) keys() []string {
	var out []string
	for _, kv := range p.attrs.ToSlice() {
		out = append(out, string(kv.Key))
	}
	return out
}

// metricData is one instrument's collected data.
type metricData struct {
	unit, description string
	kind              kind
	integer           bool
	points            []point
}

// collect collects r once and returns the ScopeName scope's instruments by
// name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]*metricData {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]*metricData{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			continue
		}
		require.NotEmpty(t, sm.Scope.SchemaURL)
		for _, m := range sm.Metrics {
			md := &metricData{unit: m.Unit, description: m.Description}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				md.kind, md.integer = sumKind(t, d.IsMonotonic, d.Temporality), true
				for _, dp := range d.DataPoints {
					md.points = append(md.points, point{dp.Attributes, float64(dp.Value)})
				}
			case metricdata.Sum[float64]:
				md.kind = sumKind(t, d.IsMonotonic, d.Temporality)
				for _, dp := range d.DataPoints {
					md.points = append(md.points, point{dp.Attributes, dp.Value})
				}
			case metricdata.Gauge[int64]:
				md.kind, md.integer = gaugeKind, true
				for _, dp := range d.DataPoints {
					md.points = append(md.points, point{dp.Attributes, float64(dp.Value)})
				}
			case metricdata.Gauge[float64]:
				md.kind = gaugeKind
				for _, dp := range d.DataPoints {
					md.points = append(md.points, point{dp.Attributes, dp.Value})
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
			require.NotContains(t, out, m.Name)
			out[m.Name] = md
		}
	}
	return out
}

func sumKind(t *testing.T, monotonic bool, temporality metricdata.Temporality) kind {
	t.Helper()
	require.Equal(t, metricdata.CumulativeTemporality, temporality)
	if monotonic {
		return counterKind
	}
	return updownKind
}

// sum adds up the values of the instrument's points whose attributes
// include want.
func sum(t *testing.T, ms map[string]*metricData, name string, want map[string]string) float64 {
	t.Helper()
	md, ok := ms[name]
	require.True(t, ok, "instrument %s missing", name)
	var total float64
	for _, p := range md.points {
		match := true
		for k, v := range want {
			if p.attr(k) != v {
				match = false
				break
			}
		}
		if match {
			total += p.value
		}
	}
	return total
}

// series renders a name and its attributes (or labels) as one line, the
// attributes sorted: the key of a flattened series.
func series(name string, attrs map[string]string) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(attrs)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, attrs[k])
	}
	b.WriteByte('}')
	return b.String()
}
