package warmpool

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		var mu sync.Mutex
		per := map[string]int{}
		closeReq := 0
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			per[r.RemoteAddr]++
			if r.Close {
				closeReq++
			}
			mu.Unlock()
			io.WriteString(w, "ok")
		}))
		srv.EnableHTTP2 = h2
		srv.StartTLS()
		rt, err := New(Config{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig, Budget: Budget{MaxRequests: 95}})
		require.NoError(t, err)
		c := &http.Client{Transport: rt}
		var wg sync.WaitGroup
		var errs int
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 125; i++ {
					resp, err := c.Get(srv.URL)
					if err != nil {
						mu.Lock()
						errs++
						mu.Unlock()
						t.Log(err)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		s := rt.Snapshot()
		t.Logf("h2=%v total=%+v", h2, s.Total)
		mu.Lock()
		mx := 0
		for _, n := range per {
			mx = max(mx, n)
		}
		t.Logf("conns=%d max=%d closeReq=%d errs=%d", len(per), mx, closeReq, errs)
		mu.Unlock()
		rt.Close()
		srv.Close()
	}
}
