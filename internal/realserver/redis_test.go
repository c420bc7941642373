package realserver

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// redisCmd sends one inline command to addr and returns the first line of
// the reply.
func redisCmd(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// TestRedis: redis-server answers on 127.0.0.1, is down after Stop, and
// comes back empty on the same port after Restart.
func TestRedis(t *testing.T) {
	r := StartRedis(t)
	addr := r.Addr()
	require.True(t, strings.HasPrefix(addr, "127.0.0.1:"), addr)
	reply, err := redisCmd(addr, "PING")
	require.NoError(t, err, r.Output())
	assert.Equal(t, "+PONG", reply)
	reply, err = redisCmd(addr, "SET k v")
	require.NoError(t, err)
	assert.Equal(t, "+OK", reply)

	r.Stop()
	_, err = redisCmd(addr, "PING")
	assert.Error(t, err, "redis-server still answers after Stop")

	r.Restart(t)
	assert.Equal(t, addr, r.Addr())
	reply, err = redisCmd(addr, "GET k")
	require.NoError(t, err, r.Output())
	assert.Equal(t, "$-1", reply, "the data outlived a restart without persistence")

	r.Close()
	r.Close()
	_, err = redisCmd(addr, "PING")
	assert.Error(t, err, "redis-server still answers after Close")
}
