package filestore_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/filestore"
)

// A crawler that runs again and again on one machine keeps what its
// Transport learned (here a server's request limit, from its Keep-Alive
// header) in a file, for its next run. The Store is closed after the
// Transport that uses it: the Transport puts what it learned last, and
// Close writes it.
func Example() {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Keep-Alive", "timeout=5, max=100")
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	dir, err := os.MkdirTemp("", "warmpool-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "warmpool.json")

	st, err := filestore.New(path)
	if err != nil {
		log.Fatal(err)
	}
	rt, err := warmpool.New(warmpool.Config{
		TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig,
		Sharing:         warmpool.Sharing{Store: st},
	})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := (&http.Client{Transport: rt}).Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rt.Close()
	if err := st.Close(); err != nil {
		log.Fatal(err)
	}

	_, err = os.Stat(path)
	fmt.Println("state file written:", err == nil)
	// Output: state file written: true
}
