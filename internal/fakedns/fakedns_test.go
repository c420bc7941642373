package fakedns

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNoSuchHost: every name is NXDOMAIN, answered by the server on
// loopback, not by the system's resolver.
func TestNoSuchHost(t *testing.T) {
	s, err := Start()
	require.NoError(t, err)
	defer s.Close()
	for _, name := range []string{"dead-1.invalid", "example.com"} {
		_, err := s.Resolver().LookupHost(context.Background(), name)
		var de *net.DNSError
		require.True(t, errors.As(err, &de), "%v", err)
		assert.True(t, de.IsNotFound, "%s: %v", name, err)
	}
	assert.GreaterOrEqual(t, s.Queries(), int64(2))
}

// TestKnownHosts: a known name resolves to its address, from the server on
// loopback; others do not.
func TestKnownHosts(t *testing.T) {
	s, err := Start(map[string]string{"target.test": "127.0.0.1"})
	require.NoError(t, err)
	defer s.Close()
	addrs, err := s.Resolver().LookupHost(context.Background(), "Target.Test")
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1"}, addrs)
	_, err = s.Resolver().LookupHost(context.Background(), "other.test")
	var de *net.DNSError
	require.True(t, errors.As(err, &de), "%v", err)
	assert.True(t, de.IsNotFound)
}
