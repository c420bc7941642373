package otelmetrics

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
)

// Option configures Register.
type Option func(*options)

type options struct {
	targets bool
	attrs   []attribute.KeyValue
}

// WithTargets turns the per-target series on (the default) or off. With
// targets on, the per-socket-pool instruments carry the attributes
// warmpool.exit and warmpool.target, whose value is a warmpool.Target
// ("https://example.com:443"), and the http.client.* instruments also
// server.address, server.port and url.scheme. With targets off, every such
// instrument carries warmpool.exit only, summed over the exit's targets
// (from Snapshot.Exits instead of Snapshot.Pairs).
func WithTargets(on bool) Option {
	return func(o *options) { o.targets = on }
}

// WithAttributes adds attributes with fixed values to every observation,
// for example to tell apart several Transports registered with one
// MeterProvider. Their keys must not be one of the instruments' own (see
// the package documentation): Register refuses such attributes. The
// caller's slice is copied.
func WithAttributes(attrs ...attribute.KeyValue) Option {
	return func(o *options) { o.attrs = append([]attribute.KeyValue(nil), attrs...) }
}

// ErrAttribute is wrapped by the error Register returns for an attribute of
// WithAttributes that is invalid or whose key is one of the instruments'
// own.
var ErrAttribute = errors.New("otelmetrics: WithAttributes")

// checkAttributes refuses invalid attributes and the instruments' own keys:
// an observation's attribute set keeps one value per key, so such an
// attribute would silently replace a figure's own.
func checkAttributes(attrs []attribute.KeyValue) error {
	seen := make(map[attribute.Key]bool, len(attrs))
	for i, kv := range attrs {
		switch {
		case !kv.Valid():
			return fmt.Errorf("%w: attribute %d (key %q) is invalid", ErrAttribute, i, kv.Key)
		case ownKeys[kv.Key]:
			return fmt.Errorf("%w: key %q is one of the instruments' own", ErrAttribute, kv.Key)
		case seen[kv.Key]:
			return fmt.Errorf("%w: key %q is given twice", ErrAttribute, kv.Key)
		}
		seen[kv.Key] = true
	}
	return nil
}
