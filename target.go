package warmpool

import (
	"net"
	"net/url"
	"strings"
)

// Target is one site as warmpool knows it: a scheme, a host and a port,
// spelled "scheme://host:port" in lower case with the scheme's default
// port filled in, as in "https://example.com:443" or "http://[::1]:8080".
// It is the one key of a target everywhere warmpool names one: in
// Snapshot's maps and rows, in events, in errors and in metric labels.
// Use TargetOf to find a URL's.
type Target string

// OtherTargets is the key under which targets beyond the tracked limit are
// summed in Snapshot.Targets (and in Snapshot.Pairs, per exit), so that
// memory stays bounded however many targets a crawl meets.
const OtherTargets Target = "(other)"

// TargetOf returns the target of u: "scheme://host:port" in lower case,
// with port 443 for https and 80 for http when u names none. It returns
// the empty Target for a URL without a host.
func TargetOf(u *url.URL) Target {
	if u == nil || u.Hostname() == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = defaultPort(scheme)
	}
	return Target(scheme + "://" + strings.ToLower(net.JoinHostPort(u.Hostname(), port)))
}

// defaultPort returns the port a URL of scheme means when it names none.
func defaultPort(scheme string) string {
	switch scheme {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// target returns k's Target.
func (k hostKey) target() Target {
	return Target(k.scheme + "://" + strings.ToLower(k.addr))
}

// lookupHost returns the value that m, keyed by a hostname ("example.com":
// every port of it) or a "host:port" (that port only, which wins), holds
// for target t. m's keys are lower case (Config.normalize makes them so).
// It is the one lookup of Config.HostBudgets and Politeness.HostDelays.
func lookupHost[V any](m map[string]V, t Target) (V, bool) {
	var zero V
	if len(m) == 0 {
		return zero, false
	}
	addr := string(t)
	if i := strings.Index(addr, "://"); i >= 0 {
		addr = addr[i+3:]
	}
	if v, ok := m[addr]; ok {
		return v, true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return zero, false
	}
	v, ok := m[host]
	return v, ok
}
