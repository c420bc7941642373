package fpserver

import (
	"bytes"
	"strconv"
	"strings"
)

// maxH1Line bounds a request line or header line (net/http's own limit on
// the whole header block is 1 MiB).
const maxH1Line = 1 << 20

// h1State is where an h1Parser is in the request stream.
type h1State int

const (
	h1Head      h1State = iota // request line and header fields
	h1Body                     // a Content-Length body
	h1ChunkSize                // a chunk-size line
	h1ChunkData                // chunk data
	h1ChunkEnd                 // the CRLF after chunk data
	h1Trailer                  // trailer fields after the last chunk
	h1Broken                   // lost: stop
)

// h1Parser follows the requests of an HTTP/1.x connection to record each
// request's header names in wire order (net/http's Header is a map). It
// skips bodies by Content-Length or chunked coding so that it finds the
// next request of a keep-alive connection.
type h1Parser struct {
	out    sink
	state  h1State
	line   []byte
	inHead bool // the request line has been read
	names  []string
	length int64
	chunk  bool
	remain int64
}

// write feeds bytes the client sent.
func (p *h1Parser) write(b []byte) {
	for len(b) > 0 && p.state != h1Broken {
		if p.state == h1Body || p.state == h1ChunkData {
			n := int(min(p.remain, int64(len(b))))
			p.remain -= int64(n)
			b = b[n:]
			if p.remain == 0 {
				if p.state == h1Body {
					p.state = h1Head
				} else {
					p.state = h1ChunkEnd
				}
			}
			continue
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.line = append(p.line, b...)
			if len(p.line) > maxH1Line {
				p.state = h1Broken
			}
			return
		}
		p.line = append(p.line, b[:i]...)
		b = b[i+1:]
		line := strings.TrimSuffix(string(p.line), "\r")
		p.line = p.line[:0]
		p.lineDone(line)
	}
}

func (p *h1Parser) lineDone(line string) {
	switch p.state {
	case h1Head:
		p.headLine(line)
	case h1ChunkSize:
		size, _, _ := strings.Cut(line, ";")
		n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
		switch {
		case err != nil || n < 0:
			p.state = h1Broken
		case n == 0:
			p.state = h1Trailer
		default:
			p.state, p.remain = h1ChunkData, n
		}
	case h1ChunkEnd:
		p.state = h1ChunkSize
		if line != "" {
			p.state = h1Broken
		}
	case h1Trailer:
		if line == "" {
			p.state = h1Head
		}
	}
}

func (p *h1Parser) headLine(line string) {
	if !p.inHead {
		if line != "" { // RFC 9112 2.2: empty lines before a request are ignored
			p.inHead, p.names, p.length, p.chunk = true, []string{}, 0, false
		}
		return
	}
	if line != "" {
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || name[0] == ' ' || name[0] == '\t' {
			return // obsolete line folding or garbage: net/http decides
		}
		p.names = append(p.names, name)
		switch strings.ToLower(name) {
		case "content-length":
			if n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64); err == nil && n >= 0 {
				p.length = n
			}
		case "transfer-encoding":
			p.chunk = strings.Contains(strings.ToLower(value), "chunked")
		}
		return
	}
	p.inHead = false
	p.out.request(p.names)
	switch {
	case p.chunk:
		p.state = h1ChunkSize
	case p.length > 0:
		p.state, p.remain = h1Body, p.length
	}
}
