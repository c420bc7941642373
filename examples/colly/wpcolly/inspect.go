package wpcolly

import (
	"net/http"
	"reflect"

	"github.com/gocolly/colly/v2"
)

// transportOf returns, read-only, the transport c's requests go through:
// c.backend.Client.Transport in colly v2.3.0 (colly.go: Collector.backend,
// http_backend.go: httpBackend.Client), an interface value. colly has no
// getter for it. ok is false when c is laid out otherwise, or has no
// client yet.
func transportOf(c *colly.Collector) (v reflect.Value, ok bool) {
	if c == nil {
		return reflect.Value{}, false
	}
	b := reflect.ValueOf(c).Elem().FieldByName("backend")
	if b.Kind() != reflect.Pointer || b.IsNil() || b.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	cl := b.Elem().FieldByName("Client")
	if !cl.IsValid() || cl.Type() != reflect.TypeFor[*http.Client]() || cl.IsNil() {
		return reflect.Value{}, false
	}
	t := cl.Elem().FieldByName("Transport")
	if !t.IsValid() || t.Kind() != reflect.Interface {
		return reflect.Value{}, false
	}
	return t, true
}

// isTransport reports whether the interface value v holds t.
func isTransport(v reflect.Value, t *http.Transport) bool {
	if v.IsNil() || v.Elem().Type() != reflect.TypeFor[*http.Transport]() {
		return false
	}
	return v.Elem().Pointer() == reflect.ValueOf(t).Pointer()
}

// proxySet reports whether the interface value v holds an *http.Transport
// as colly's SetProxyFunc leaves it (colly.go:1111-1116): a Proxy, and
// DisableKeepAlives. A transport of the user's own with a Proxy
// (http.ProxyFromEnvironment, say) keeps its keep-alive, and does not count.
func proxySet(v reflect.Value) bool {
	if v.IsNil() || v.Elem().Type() != reflect.TypeFor[*http.Transport]() || v.Elem().IsNil() {
		return false
	}
	t := v.Elem().Elem()
	return !t.FieldByName("Proxy").IsNil() && t.FieldByName("DisableKeepAlives").Bool()
}
