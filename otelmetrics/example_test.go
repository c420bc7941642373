package otelmetrics_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/otelmetrics"
)

func ExampleRegister() {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()

	rt, err := warmpool.New(warmpool.Config{
		TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()

	// A service passes its own MeterProvider (nil means the global one);
	// here the SDK's with a ManualReader, to print what it collects.
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	reg, err := otelmetrics.Register(rt, mp)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()

	client := &http.Client{Transport: rt}
	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "warmpool.requests" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				class, _ := dp.Attributes.Value("warmpool.request.class")
				lines = append(lines, fmt.Sprintf("%s{warmpool.request.class=%s} %d %s", m.Name, class.AsString(), dp.Value, m.Unit))
			}
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// warmpool.requests{warmpool.request.class=cold} 1 {request}
	// warmpool.requests{warmpool.request.class=prewarmed} 0 {request}
	// warmpool.requests{warmpool.request.class=reused} 2 {request}
}
