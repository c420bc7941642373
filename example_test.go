package warmpool_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"

	"github.com/warmpool/warmpool"
)

// Example sends 30 requests through a Transport whose sockets carry at most
// 10 requests each, then reads the statistics.
func Example() {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	rt, err := warmpool.New(warmpool.Config{
		TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig,
		Budget:          warmpool.Budget{MaxRequests: 10},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}

	for range 30 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	s := rt.Snapshot().Total
	fmt.Printf("requests=%d sockets used=%d reused=%d keep-alive=%.2f budget closes=%d\n",
		s.Requests, s.Cold+s.Prewarmed, s.Reused, s.KeepAliveRatio, s.Closes[warmpool.CloseBudget])
	// Output: requests=30 sockets used=3 reused=27 keep-alive=0.90 budget closes=3
}

// ExampleNew makes a Transport for an HTTPS server and sends it three
// requests: the first pays for the TCP and TLS handshakes, the other two
// reuse its socket.
func ExampleNew() {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer srv.Close()

	rt, err := warmpool.New(warmpool.Config{
		// The test server's certificate is its own: trust it as its
		// client does. A real crawl leaves TLSClientConfig nil.
		TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close() // stops its goroutines and closes its sockets
	client := &http.Client{Transport: rt}

	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		// Read the body to its end (or close it) to free the socket.
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	s := rt.Snapshot().Total
	fmt.Printf("cold %d, reused %d\n", s.Cold, s.Reused)
	// Output: cold 1, reused 2
}

// ExampleNew_configError shows the error New returns for a bad proxy URL:
// a *ConfigError that names the field.
func ExampleNew_configError() {
	_, err := warmpool.New(warmpool.Config{Exits: []warmpool.Exit{{Proxy: "ftp://127.0.0.1:21"}}})
	fmt.Println(err)
	// Output: warmpool: Config.Exits[0].Proxy: unsupported scheme "ftp" (want http, https, socks5)
}

// ExampleTransport_Snapshot reads a Transport's statistics after a few
// requests: in total, per exit and per target. Targets are keyed by
// TargetOf of a URL.
func ExampleTransport_Snapshot() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	rt, err := warmpool.New(warmpool.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}
	for _, path := range []string{"/", "/a", "/b", "/missing"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	snap := rt.Snapshot()
	fmt.Println("status:", snap.Status)
	t := snap.Total
	fmt.Printf("total: %d requests, %d cold, %d reused, %d handshake, keep-alive %.2f\n",
		t.Requests, t.Cold, t.Reused, t.Handshakes, t.KeepAliveRatio)
	fmt.Printf("statuses: 2xx %d, 4xx %d\n", t.Statuses["2xx"], t.Statuses["4xx"])
	direct := snap.Exits["direct"]
	fmt.Printf("exit direct: %d requests, healthy %t\n", direct.Requests, direct.Healthy)
	u, _ := url.Parse(srv.URL)
	fmt.Printf("targets: %d, this one: %d requests\n", len(snap.Targets), snap.Targets[warmpool.TargetOf(u)].Requests)
	// Output:
	// status: healthy
	// total: 4 requests, 1 cold, 3 reused, 1 handshake, keep-alive 0.75
	// statuses: 2xx 3, 4xx 1
	// exit direct: 4 requests, healthy true
	// targets: 1, this one: 4 requests
}

// ExampleTargetOf shows the one spelling of a target: lower case, with the
// scheme's default port filled in.
func ExampleTargetOf() {
	for _, raw := range []string{"https://Example.COM/path?q=1", "http://example.com:8080/", "http://[::1]/"} {
		u, err := url.Parse(raw)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(warmpool.TargetOf(u))
	}
	// Output:
	// https://example.com:443
	// http://example.com:8080
	// http://[::1]:80
}

// ExampleWithSession pins each session's requests to one exit, chosen by
// hashing its key (the same exit in every run and every process with
// these exits), while the exit is healthy. The two exits here are both
// direct (a real crawl names proxies); OnRequest reports the exit each
// request went through.
func ExampleWithSession() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	var mu sync.Mutex
	var exits []string // the exit of each request, in order
	rt, err := warmpool.New(warmpool.Config{
		Exits: []warmpool.Exit{{Name: "a"}, {Name: "b"}},
		OnRequest: func(ev warmpool.RequestEvent) {
			mu.Lock()
			exits = append(exits, ev.Exit)
			mu.Unlock()
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}

	used := map[string][]string{} // session key -> exits of its requests
	for range 3 {
		for _, key := range []string{"alice", "bob"} {
			ctx := warmpool.WithSession(context.Background(), key)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			if err != nil {
				log.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				log.Fatal(err)
			}
			// The attempt ends, and OnRequest runs, when the body
			// reaches its end on this goroutine.
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			used[key] = append(used[key], exits[len(exits)-1])
			mu.Unlock()
		}
	}
	for _, key := range []string{"alice", "bob"} {
		fmt.Println(key, used[key])
	}
	// Output:
	// alice [a a a]
	// bob [b b b]
}

// ExampleTransport_NewSessionPool hands out sessions, each with one exit
// and one cookie jar. A session past its MaxRequests is retired: its key
// moves to another exit with an empty jar.
func ExampleTransport_NewSessionPool() {
	// The server counts each client's visits in a cookie.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		if c, err := r.Cookie("visits"); err == nil {
			fmt.Sscan(c.Value, &n)
		}
		http.SetCookie(w, &http.Cookie{Name: "visits", Value: fmt.Sprint(n + 1)})
		fmt.Fprintf(w, "visits before: %d", n)
	}))
	defer srv.Close()

	rt, err := warmpool.New(warmpool.Config{Exits: []warmpool.Exit{{Name: "a"}, {Name: "b"}}})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	pool, err := rt.NewSessionPool(warmpool.SessionPoolConfig{MaxRequests: 2})
	if err != nil {
		log.Fatal(err)
	}

	alice := pool.Get("alice")
	client := alice.Client() // stays valid when the session is retired
	for i := 1; i <= 3; i++ {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("request %d: exit %s, %s\n", i, alice.Exit(), body)
	}
	fmt.Println("bob's exit:", pool.Get("bob").Exit()) // the less loaded one

	st := pool.Stats()
	fmt.Println("live:", st.Live, "retired at max requests:", st.Retired[warmpool.SessionRetiredRequests])
	// Output:
	// request 1: exit a, visits before: 0
	// request 2: exit a, visits before: 1
	// request 3: exit b, visits before: 0
	// bob's exit: a
	// live: 2 retired at max requests: 1
}

// ExamplePoliteness spaces the requests to one target by at least Delay,
// whichever exit or goroutine sends them: four concurrent requests take at
// least three delays.
func ExamplePoliteness() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	const delay = 50 * time.Millisecond
	rt, err := warmpool.New(warmpool.Config{
		Politeness: warmpool.Politeness{
			Delay: delay,
			// A site's crawl-delay goes in HostDelays, keyed by hostname
			// or host:port:
			// HostDelays: map[string]time.Duration{"example.com": 2 * time.Second},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}

	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, failed int
	for range 4 {
		wg.Go(func() {
			resp, err := client.Get(srv.URL)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			ok++
		})
	}
	wg.Wait()
	fmt.Printf("%d requests, %d errors, at least 3 delays: %t\n", ok, failed, time.Since(start) >= 3*delay)
	// Output: 4 requests, 0 errors, at least 3 delays: true
}

// ExampleBlocks avoids an exit that a target blocks, for that target only.
// The server here answers a captcha page to the first address that asks,
// and a custom IsBlocked rule recognises it. (By default a 403 or 429 is a
// block when the target answered 2xx through another exit: that needs exits
// with distinct addresses, proxies, which a loopback test server cannot
// tell apart.)
func ExampleBlocks() {
	var mu sync.Mutex
	var banned string // the remote address the server blocks
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if banned == "" {
			banned = r.RemoteAddr
		}
		blocked := r.RemoteAddr == banned
		mu.Unlock()
		if blocked {
			w.Header().Set("X-Captcha", "1")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "prove you are human")
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	var exits []string
	rt, err := warmpool.New(warmpool.Config{
		Exits: []warmpool.Exit{{Name: "a"}, {Name: "b"}},
		Blocks: warmpool.Blocks{
			IsBlocked:         func(resp *http.Response) bool { return resp.Header.Get("X-Captcha") != "" },
			ConsecutiveBlocks: 1,         // one captcha is enough
			Cooldown:          time.Hour, // avoid the exit there for an hour
			MaxCooldown:       time.Hour,
		},
		OnRequest: func(ev warmpool.RequestEvent) {
			mu.Lock()
			exits = append(exits, fmt.Sprintf("%s %d", ev.Exit, ev.StatusCode))
			mu.Unlock()
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}
	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	mu.Lock()
	fmt.Println("requests:", exits)
	mu.Unlock()
	for _, b := range rt.Snapshot().Blocks {
		fmt.Printf("blocked: exit %s, %d block(s), avoided now %t\n", b.Exit, b.Blocks, !b.AvoidedUntil.IsZero())
	}
	// Output:
	// requests: [a 403 b 200 b 200]
	// blocked: exit a, 1 block(s), avoided now true
}

// ExampleConfig_hostBudgets gives one target a budget of 2 requests per
// socket: 5 requests take 3 sockets, and the first two close at their
// budget. HostBudgets is keyed by hostname (every port) or by host:port.
//
// Each socket's replacement is dialed in the background before its budget
// runs out (Config.Prewarm), so a request may find it ready (prewarmed)
// rather than pay for its handshake (cold); Stats.Handshakes also counts a
// replacement dialed ahead that no request used yet.
func ExampleConfig_hostBudgets() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	rt, err := warmpool.New(warmpool.Config{
		HostBudgets: map[string]warmpool.Budget{
			u.Host: {MaxRequests: 2}, // "127.0.0.1:port"
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}
	for range 5 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	snap := rt.Snapshot()
	t := snap.Total
	fmt.Println("requests:", t.Requests)
	fmt.Println("sockets that carried them:", t.Cold+t.Prewarmed)
	fmt.Println("budget closes:", t.Closes[warmpool.CloseBudget])
	if pol, ok := snap.Policy(srv.URL, "HTTP/1.1"); ok {
		fmt.Println("policy:", pol.MaxRequests, pol.MaxRequestsSource)
	}
	// Output:
	// requests: 5
	// sockets that carried them: 3
	// budget closes: 2
	// policy: 2 configured
}
