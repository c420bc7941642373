package dashboard_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/dashboard"
)

// ExampleHandler mounts the dashboard of a Transport that sent four
// requests over sockets with a budget of two, and reads it as a program
// does (JSON) and as a browser does (an HTML page).
func ExampleHandler() {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer target.Close()

	rt, err := warmpool.New(warmpool.Config{Budget: warmpool.Budget{MaxRequests: 2}})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}
	for range 4 {
		resp, err := client.Get(target.URL)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	// Serve the dashboard where only operators can reach it, such as an
	// internal debug port.
	mux := http.NewServeMux()
	mux.Handle("/debug/warmpool", dashboard.Handler(rt))
	debug := httptest.NewServer(mux)
	defer debug.Close()

	// A program asks for JSON (or adds ?format=json).
	req, err := http.NewRequest(http.MethodGet, debug.URL+"/debug/warmpool", nil)
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	var page struct {
		Snapshot warmpool.Snapshot
		Killers  []dashboard.Killer
		Events   []struct {
			Kind   string
			Reason warmpool.CloseReason
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	fmt.Println("requests:", page.Snapshot.Total.Requests)
	for _, k := range page.Killers {
		// Only this example's own killer: client_recreation counts
		// every Transport of the process, and tests make many.
		if k.Name == "budget" {
			fmt.Println("killer:", k.Name, k.Handshakes)
		}
	}
	budgetCloses := 0
	for _, ev := range page.Events {
		if ev.Kind == "closed" && ev.Reason == warmpool.CloseBudget {
			budgetCloses++
		}
	}
	fmt.Println("events of sockets closed at their budget:", budgetCloses)

	// A browser gets the HTML page.
	resp, err = http.Get(debug.URL + "/debug/warmpool")
	if err != nil {
		log.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	// Output:
	// 200 application/json
	// requests: 4
	// killer: budget 2
	// events of sockets closed at their budget: 2
	// 200 text/html; charset=utf-8
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
