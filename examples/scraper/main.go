// Command scraper crawls a site that bans one of its exits, through three
// exits, with the three things a polite scraper needs from warmpool:
// blocks per exit and site (the banned exit is avoided for that site only),
// a session pool (each account keeps one address and its own cookies), and
// politeness (at most one request every 50 ms to the site, across exits,
// and Retry-After honoured).
//
//	go run ./examples/scraper
//
// It starts its own TLS site and CONNECT proxies on 127.0.0.1 (the proxies
// send from 127.0.0.2 to 127.0.0.4); the site answers 403 to 127.0.0.3.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

func main() {
	var mu sync.Mutex
	seen := map[string]int{}
	site, err := target.Start(target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		seen[ip]++
		mu.Unlock()
		if ip == "127.0.0.3" {
			http.Error(w, "banned", http.StatusForbidden)
			return
		}
		if _, err := r.Cookie("sid"); err != nil {
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: r.Header.Get("X-Account")})
		}
		io.WriteString(w, "ok")
	})})
	if err != nil {
		log.Fatal(err)
	}
	defer site.Close()
	var exits []warmpool.Exit
	for i := range 3 {
		px, err := testproxy.Start(testproxy.Config{SourceIP: fmt.Sprintf("127.0.0.%d", i+2)})
		if err != nil {
			log.Fatal(err)
		}
		defer px.Close()
		exits = append(exits, warmpool.Exit{Name: fmt.Sprint("proxy-", i+1), Proxy: px.URLString()})
	}

	rt, err := warmpool.New(warmpool.Config{
		TLSClientConfig: site.TLSConfig(),
		Exits:           exits,
		// Blocks are on by default: a 403 that other exits do not get
		// makes the site avoid that exit after 3, for a minute at first.
		Blocks:     warmpool.Blocks{ConsecutiveBlocks: 3},
		Politeness: warmpool.Politeness{Delay: 50 * time.Millisecond, Jitter: 0.2, RetryAfter: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	sessions, err := rt.NewSessionPool(warmpool.SessionPoolConfig{MaxRequests: 20})
	if err != nil {
		log.Fatal(err)
	}

	// Anonymous pages through any exit, and account pages through each
	// account's session.
	anon := &http.Client{Transport: rt}
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 10 {
				c := anon
				req, _ := http.NewRequest(http.MethodGet, site.URL()+fmt.Sprint("/page/", i), nil)
				if w%2 == 1 {
					account := fmt.Sprint("account-", w)
					req.Header.Set("X-Account", account)
					c = sessions.Get(account).Client()
				}
				resp, err := c.Do(req)
				if err != nil {
					log.Print(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	snap := rt.Snapshot()
	fmt.Println("responses by status:", statuses)
	fmt.Println("requests the site saw by source address:", seen)
	for _, b := range snap.Blocks {
		fmt.Printf("blocks: %s blocked %s %d times (avoided until %s)\n", b.Target, b.Exit, b.Blocks, b.AvoidedUntil.Format(time.TimeOnly))
	}
	st := sessions.Stats()
	fmt.Printf("sessions: %d live, retired %v\n", st.Live, st.Retired)
	for i := 1; i < 6; i += 2 {
		s := sessions.Get(fmt.Sprint("account-", i))
		fmt.Printf("  %s leaves from %s\n", s.Key, s.Exit())
	}
}
