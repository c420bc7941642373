// Package fakedns is a DNS server on loopback that knows only the names it
// is given: it answers their A queries with their address, and every other
// query with NXDOMAIN, so that tests of names that do not resolve (under
// .invalid), or of names that must not look like loopback, send nothing
// beyond 127.0.0.1.
package fakedns

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// Server answers DNS queries over UDP. Use Resolver for a *net.Resolver
// that asks it.
type Server struct {
	hosts   map[string]net.IP // lower case, without the final dot
	pc      net.PacketConn
	queries atomic.Int64
	wg      sync.WaitGroup
}

// Start starts a Server on 127.0.0.1 (an ephemeral port) that knows hosts
// (name to IPv4 address; nil for none) and no other name.
func Start(hosts ...map[string]string) (*Server, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{pc: pc, hosts: make(map[string]net.IP)}
	for _, m := range hosts {
		for name, ip := range m {
			s.hosts[strings.ToLower(strings.TrimSuffix(name, "."))] = net.ParseIP(ip).To4()
		}
	}
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
		resp := s.answer(buf[:n])
		s.queries.Add(1)
		s.pc.WriteTo(resp, addr)
	}
}

// answer answers query q: with the address of a known name for an A
// query, with no record (NOERROR) for another type of query for a known
// name, and with NXDOMAIN otherwise. The answer keeps q's ID and question,
// copies RD, sets QR and RA, and drops anything after the question (an
// EDNS OPT record, say).
func (s *Server) answer(q []byte) []byte {
	end := 12
	var labels []string
	for end < len(q) && q[end] != 0 {
		l := int(q[end])
		if end+1+l > len(q) {
			break
		}
		labels = append(labels, string(q[end+1:end+1+l]))
		end += l + 1
	}
	end += 1 + 4 // the root label, QTYPE and QCLASS
	if int(q[4])<<8|int(q[5]) != 1 || end > len(q) {
		return nxdomain(q[:min(end, len(q))])
	}
	qtype := int(q[end-4])<<8 | int(q[end-3])
	ip, known := s.hosts[strings.ToLower(strings.Join(labels, "."))]
	if !known || ip == nil {
		return nxdomain(q[:end])
	}
	r := append([]byte(nil), q[:end]...)
	r[2] = 0x80 | 0x04 | (q[2] & 0x01) // QR, AA, RD as asked
	r[3] = 0x80                        // RA, NOERROR
	r[6], r[7], r[8], r[9], r[10], r[11] = 0, 0, 0, 0, 0, 0
	if qtype != 1 {
		return r // the name exists, with no record of that type
	}
	r[7] = 1                                                 // ANCOUNT
	r = append(r, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4) // name pointer, A, IN, TTL 60, RDLENGTH 4
	return append(r, ip...)
}

// nxdomain turns a query (its header and question) into its NXDOMAIN
// answer.
func nxdomain(q []byte) []byte {
	r := append([]byte(nil), q...)
	r[2] = 0x80 | (q[2] & 0x01) // QR, RD as asked
	r[3] = 0x80 | 0x03          // RA, NXDOMAIN
	r[6], r[7], r[8], r[9], r[10], r[11] = 0, 0, 0, 0, 0, 0
	return r
}
