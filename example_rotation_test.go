package warmpool_test

import (
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"

	"github.com/warmpool/warmpool"
)

// firstEligible is a Rotation that places every new socket on the first
// eligible exit, in the order of Config.Exits: later exits are
// fallbacks, used only while the ones before them are ejected.
type firstEligible struct{}

func (firstEligible) Pick(_ warmpool.Target, exits warmpool.ExitSet) int {
	for i := range exits.Len() {
		if exits.Eligible(i) {
			return i
		}
	}
	return 0 // none is eligible: warmpool then fails the request
}

// ExampleRotation uses a custom Rotation through Config.Rotation: the
// sockets for two targets are both placed on exit "a", where the default
// RoundRobin would spread them over "a" and "b".
func ExampleRotation() {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	one := httptest.NewServer(handler)
	defer one.Close()
	two := httptest.NewServer(handler)
	defer two.Close()

	rt, err := warmpool.New(warmpool.Config{
		Exits:    []warmpool.Exit{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Rotation: firstEligible{},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}
	for _, target := range []string{one.URL, two.URL, one.URL, two.URL} {
		resp, err := client.Get(target)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	exits := rt.Snapshot().Exits
	for _, name := range slices.Sorted(maps.Keys(exits)) {
		fmt.Printf("exit %s: %d sockets, %d requests\n", name, exits[name].Handshakes, exits[name].Requests)
	}
	// Output:
	// exit a: 2 sockets, 4 requests
	// exit b: 0 sockets, 0 requests
	// exit c: 0 sockets, 0 requests
}
