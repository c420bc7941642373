package prometheus_test

import (
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warmpool/warmpool"
	wpprom "github.com/warmpool/warmpool/prometheus"
)

func ExampleNewCollector() {
	rt, err := warmpool.New(warmpool.Config{Budget: warmpool.Budget{MaxRequests: 95}})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}
	_ = client

	prometheus.MustRegister(wpprom.NewCollector(rt))
	http.Handle("/metrics", promhttp.Handler())
}
