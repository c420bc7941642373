package dashboard_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/dashboard"
)

func ExampleHandler() {
	rt, err := warmpool.New(warmpool.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	mux := http.NewServeMux()
	mux.Handle("/debug/warmpool", dashboard.Handler(rt))

	// A program asks for JSON; a browser gets the HTML page.
	req := httptest.NewRequest(http.MethodGet, "/debug/warmpool", nil)
	req.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output: 200 application/json
}

func ExampleKillers() {
	// A Snapshot as (*warmpool.Transport).Snapshot returns it, here made up:
	// the server closed 7 idle sockets and warmpool retired 21 at their
	// budget.
	snap := warmpool.Snapshot{Total: warmpool.Stats{Closes: map[warmpool.CloseReason]uint64{
		warmpool.CloseServerIdleTimeout: 7,
		warmpool.CloseBudget:            21,
	}}}
	for _, k := range dashboard.Killers(snap) {
		fmt.Println(k.Name, k.Handshakes)
	}
	// Output:
	// budget 21
	// server_idle_timeout 7
}
