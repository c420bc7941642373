// Package keepalive parses the Keep-Alive response header of HTTP/1.1
// servers (RFC 2068 19.7.1.1; Apache sends "timeout=5, max=100"). warmpool
// learns from it, and the probe command reports it.
package keepalive

import (
	"strconv"
	"strings"
	"time"
)

// Header is a parsed Keep-Alive header: the server's idle timeout and how
// many more requests it allows on the socket; -1 means absent.
type Header struct {
	Timeout time.Duration
	Max     int
}

// Parse parses a Keep-Alive header value such as "timeout=5, max=100".
// Unknown parameters are ignored; so is any value that is not a plain
// non-negative decimal. ok is false when the header has neither a timeout
// nor a max.
func Parse(v string) (h Header, ok bool) {
	h = Header{Timeout: -1, Max: -1}
	for part := range strings.SplitSeq(v, ",") {
		name, val, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found {
			continue
		}
		name = strings.ToLower(strings.TrimSpace(name))
		val = strings.Trim(strings.TrimSpace(val), `"`)
		if val == "" || len(val) > 9 || strings.TrimLeft(val, "0123456789") != "" {
			continue
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			continue
		}
		switch name {
		case "timeout":
			if h.Timeout < 0 && n > 0 {
				h.Timeout = time.Duration(n) * time.Second
				ok = true
			}
		case "max":
			if h.Max < 0 {
				h.Max = n
				ok = true
			}
		}
	}
	return h, ok
}
