package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/proxy"
)

// h2settings is what a server's first SETTINGS frame says.
type h2settings struct {
	maxStreams, initialWindow, maxFrame uint32
}

// h2Settings dials the target (through the exit) with TLS and ALPN h2,
// sends the client preface and reads the server's SETTINGS frame.
func (p *prober) h2Settings(ctx context.Context) (h2settings, error) {
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	raw, err := p.dialRaw(ctx)
	if err != nil {
		return h2settings{}, err
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	tc := tls.Client(raw, &tls.Config{ServerName: p.u.Hostname(), NextProtos: []string{"h2"}, InsecureSkipVerify: p.o.Insecure})
	if err := tc.HandshakeContext(ctx); err != nil {
		return h2settings{}, err
	}
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		return h2settings{}, errors.New("the server did not negotiate h2")
	}
	if _, err := io.WriteString(tc, http2.ClientPreface); err != nil {
		return h2settings{}, err
	}
	fr := http2.NewFramer(tc, tc)
	if err := fr.WriteSettings(); err != nil {
		return h2settings{}, err
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return h2settings{}, err
		}
		sf, ok := f.(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			continue
		}
		var st h2settings
		if v, ok := sf.Value(http2.SettingMaxConcurrentStreams); ok {
			st.maxStreams = v
		}
		if v, ok := sf.Value(http2.SettingInitialWindowSize); ok {
			st.initialWindow = v
		} else {
			st.initialWindow = 65535 // the protocol's default
		}
		if v, ok := sf.Value(http2.SettingMaxFrameSize); ok {
			st.maxFrame = v
		}
		return st, nil
	}
}

// dialRaw opens a TCP connection to the target through the exit: direct,
// an HTTP(S) CONNECT tunnel or SOCKS5.
func (p *prober) dialRaw(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: p.o.Timeout}
	target := hostPort(p.u)
	if p.proxy == nil {
		return d.DialContext(ctx, "tcp", target)
	}
	switch p.proxy.Scheme {
	case "socks5", "socks5h":
		var auth *proxy.Auth
		if u := p.proxy.User; u != nil {
			pw, _ := u.Password()
			auth = &proxy.Auth{User: u.Username(), Password: pw}
		}
		sd, err := proxy.SOCKS5("tcp", p.proxy.Host, auth, d)
		if err != nil {
			return nil, err
		}
		return sd.(proxy.ContextDialer).DialContext(ctx, "tcp", target)
	}
	c, err := d.DialContext(ctx, "tcp", p.proxy.Host)
	if err != nil {
		return nil, err
	}
	if p.proxy.Scheme == "https" {
		tc := tls.Client(c, &tls.Config{ServerName: p.proxy.Hostname(), InsecureSkipVerify: p.o.Insecure})
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	auth := ""
	if u := p.proxy.User; u != nil {
		pw, _ := u.Password()
		r2, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		r2.SetBasicAuth(u.Username(), pw)
		auth = "Proxy-Authorization: " + r2.Header.Get("Authorization") + "\r\n"
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target, auth); err != nil {
		c.Close()
		return nil, err
	}
	req := &http.Request{Method: http.MethodConnect}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		c.Close()
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("proxy answered CONNECT with %s", resp.Status)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
