package redisstore_test

import (
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/redisstore"
)

// A fleet of crawlers shares what each learns, and one politeness clock per
// site, through one Redis. The Store is closed after the Transport that uses
// it, and the client after the Store.
func Example() {
	client := redis.NewClient(&redis.Options{Addr: "redis.internal:6379"})
	defer client.Close()
	st, err := redisstore.New(client, redisstore.Options{Prefix: "crawler:"})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	rt, err := warmpool.New(warmpool.Config{
		Sharing: warmpool.Sharing{Store: st},
		// At most 20 requests a second to each site, for the whole fleet.
		Politeness: warmpool.Politeness{Delay: 50 * time.Millisecond},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	c := &http.Client{Transport: rt}
	resp, err := c.Get("https://example.com/")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
}
