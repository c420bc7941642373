// Package fakedns is a DNS server on loopback that knows no name: it answers
// every query with NXDOMAIN, so that tests of names that do not resolve
// (under .invalid) send nothing beyond 127.0.0.1.
package fakedns

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
)

// Server answers every DNS query over UDP with NXDOMAIN. Use Resolver for
// a *net.Resolver that asks it.
type Server struct {
	pc      net.PacketConn
	queries atomic.Int64
	wg      sync.WaitGroup
}

// Start starts a Server on 127.0.0.1 (an ephemeral port).
func Start() (*Server, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{pc: pc}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr is the server's address, "127.0.0.1:port".
func (s *Server) Addr() string { return s.pc.LocalAddr().String() }

// Queries counts the queries answered.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Resolver returns a resolver (Go's own, PreferGo) that sends every query
// to s, whatever the system's configuration says.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.Addr())
	}}
}

// Close stops the server and waits for it.
func (s *Server) Close() error {
	err := s.pc.Close()
	s.wg.Wait()
	return err
}

func (s *Server) serve() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, addr, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 12 {
			continue // not a DNS message
		}
		resp := nxdomain(buf[:n])
		s.queries.Add(1)
		s.pc.WriteTo(resp, addr)
	}
}

// nxdomain turns a query into its NXDOMAIN answer: the same ID and
// question, flags QR (response), RD copied, RA, RCODE 3, and no answer,
// authority or additional records.
func nxdomain(q []byte) []byte {
	r := make([]byte, len(q))
	copy(r, q)
	r[2] = 0x80 | (q[2] & 0x01) // QR, RD as asked
	r[3] = 0x80 | 0x03          // RA, NXDOMAIN
	// Keep QDCOUNT; zero ANCOUNT, NSCOUNT and ARCOUNT, and drop anything
	// after the question (an EDNS OPT record, say).
	r[6], r[7], r[8], r[9], r[10], r[11] = 0, 0, 0, 0, 0, 0
	end := 12
	for i := 0; i < int(q[4])<<8|int(q[5]) && end < len(q); i++ {
		for end < len(q) && q[end] != 0 {
			end += int(q[end]) + 1 // a label
		}
		end += 1 + 4 // the root label, QTYPE and QCLASS
	}
	return r[:min(end, len(r))]
}
