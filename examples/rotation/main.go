// Command rotation spreads a scraper's requests over several exits (one
// direct, two proxies) with warmpool: sockets retire after 20 requests and
// each replacement is pre-warmed on a different exit, sessions stay on one
// exit, and the per-exit statistics show the spread.
//
//	go run ./examples/rotation
//
// It starts its own TLS target and proxies on 127.0.0.1 (the proxies send
// from 127.0.0.2 and 127.0.0.3, so the target sees three client IPs).
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"sort"
	"sync"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

func main() {
	tg, err := target.Start(target.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer tg.Close()
	connect, err := testproxy.Start(testproxy.Config{Kind: testproxy.HTTPConnect, SourceIP: "127.0.0.2", Username: "scraper", Password: "hunter2"})
	if err != nil {
		log.Fatal(err)
	}
	defer connect.Close()
	socks, err := testproxy.Start(testproxy.Config{Kind: testproxy.SOCKS5, SourceIP: "127.0.0.3"})
	if err != nil {
		log.Fatal(err)
	}
	defer socks.Close()

	rt, err := warmpool.New(warmpool.Config{
		TLSClientConfig: tg.TLSConfig(),
		Exits: []warmpool.Exit{
			{Name: "direct"},
			{Name: "connect-proxy", Proxy: connect.URLString()}, // credentials stay out of names and stats
			{Name: "socks-proxy", Proxy: socks.URLString()},
		},
		Rotation: warmpool.LeastLoaded(),
		Budget:   warmpool.Budget{MaxRequests: 20},
		OnSocket: func(e warmpool.SocketEvent) {
			if e.Kind == warmpool.SocketPrewarmed && e.Replaces != 0 {
				fmt.Printf("socket %d pre-warmed on %s to replace socket %d on %s\n", e.SocketID, e.Exit, e.Replaces, e.ReplacesExit)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}

	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				// Every request of a session leaves from the same exit.
				ctx := warmpool.WithSession(context.Background(), fmt.Sprintf("user-%d", (w*50+i)%10))
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL(), nil)
				resp, err := client.Do(req)
				if err != nil {
					log.Print(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()

	snap := rt.Snapshot()
	names := make([]string, 0, len(snap.Exits))
	for n := range snap.Exits {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Println()
	for _, n := range names {
		e := snap.Exits[n]
		fmt.Printf("%-14s requests=%-4d cold=%-2d prewarmed=%-2d reused=%-4d resumed TLS=%-2d healthy=%v\n",
			n, e.Requests, e.Cold, e.Prewarmed, e.Reused, e.Resumed, e.Healthy)
	}
	fmt.Printf("target saw client IPs: %v\n", tg.Stats().RemoteIPs())
}
