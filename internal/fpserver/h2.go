package fpserver

import (
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/net/http2/hpack"
)

// h2Preface is the HTTP/2 client connection preface (RFC 9113 3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// HTTP/2 frame types and flags the parser reads (RFC 9113 6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameSettings     = 0x4
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9

	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20

	// maxBufferedFrame bounds what the parser buffers: net/http's
	// SETTINGS_MAX_FRAME_SIZE (1 MiB unless configured).
	maxBufferedFrame = 1 << 20
	// hpackTableSize is the server's SETTINGS_HEADER_TABLE_SIZE: net/http
	// advertises the protocol default.
	hpackTableSize = 4096
)

// sink receives what a protocol parser learns. Its methods are called
// synchronously from the connection's Read, before the bytes reach
// net/http, so a handler sees its own request's facts.
type sink interface {
	// request is called once per request with its regular header names in
	// wire order.
	request(names []string)
	// http2 is called once, at the first request's HEADERS, with the Akamai
	// fingerprint.
	http2(fingerprint string)
	// goAway is called for every GOAWAY frame the client sends.
	goAway(code uint32)
}

// h2Parser follows the client's side of an HTTP/2 connection (after the
// preface) frame by frame: it decodes every header block, to keep its HPACK
// table in step with the client's, and builds the Akamai fingerprint from
// the frames before the first HEADERS. On anything it cannot follow it
// stops; the connection itself is net/http's business.
type h2Parser struct {
	out    sink
	broken bool

	hdr  [9]byte
	nhdr int
	// The frame being read: its header fields and, unless it is skipped
	// (DATA), the payload so far.
	typ, flags byte
	stream     uint32
	length     int
	payload    []byte
	skip       int

	dec         *hpack.Decoder
	block       []byte // header block being gathered over CONTINUATIONs
	blockStream uint32
	inBlock     bool
	lastStream  uint32 // highest stream that has sent HEADERS

	sawHeaders   bool
	settings     []string
	sawSettings  bool
	windowUpdate string
	priorities   []string
}

func newH2Parser(out sink) *h2Parser {
	return &h2Parser{out: out, dec: hpack.NewDecoder(hpackTableSize, nil)}
}

// write feeds bytes the client sent, after the preface.
func (p *h2Parser) write(b []byte) {
	for len(b) > 0 && !p.broken {
		switch {
		case p.nhdr < len(p.hdr):
			n := copy(p.hdr[p.nhdr:], b)
			p.nhdr += n
			b = b[n:]
			if p.nhdr == len(p.hdr) {
				p.startFrame()
			}
		case p.skip > 0:
			n := min(p.skip, len(b))
			p.skip -= n
			b = b[n:]
			if p.skip == 0 {
				p.nhdr = 0
			}
		default:
			n := min(p.length-len(p.payload), len(b))
			p.payload = append(p.payload, b[:n]...)
			b = b[n:]
			if len(p.payload) == p.length {
				p.frame()
				p.payload = p.payload[:0]
				p.nhdr = 0
			}
		}
	}
}

func (p *h2Parser) startFrame() {
	h := p.hdr[:]
	p.length = int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	p.typ, p.flags = h[3], h[4]
	p.stream = binary.BigEndian.Uint32(h[5:9]) & 0x7fffffff
	switch {
	case p.typ == frameData:
		p.skip = p.length // the body is of no interest
		if p.skip == 0 {
			p.nhdr = 0
		}
	case p.length > maxBufferedFrame:
		p.broken = true
	case p.length == 0:
		p.frame()
		p.nhdr = 0
	}
}

// frame handles a whole frame in p.payload.
func (p *h2Parser) frame() {
	b := p.payload
	if p.inBlock && p.typ != frameContinuation {
		p.broken = true // RFC 9113 6.10: nothing may interleave
		return
	}
	switch p.typ {
	case frameSettings:
		if p.flags&flagAck != 0 || p.sawSettings {
			return
		}
		p.sawSettings = true
		for ; len(b) >= 6; b = b[6:] {
			p.settings = append(p.settings, fmt.Sprintf("%d:%d",
				binary.BigEndian.Uint16(b), binary.BigEndian.Uint32(b[2:])))
		}
	case frameWindowUpdate:
		if p.stream == 0 && !p.sawHeaders && p.windowUpdate == "" && len(b) == 4 {
			p.windowUpdate = fmt.Sprint(binary.BigEndian.Uint32(b) & 0x7fffffff)
		}
	case framePriority:
		if !p.sawHeaders && len(b) == 5 {
			p.priorities = append(p.priorities, priority(p.stream, b))
		}
	case frameGoAway:
		if len(b) >= 8 {
			p.out.goAway(binary.BigEndian.Uint32(b[4:8]))
		}
	case frameHeaders:
		var pad int
		if p.flags&flagPadded != 0 {
			if len(b) == 0 {
				p.broken = true
				return
			}
			pad, b = int(b[0]), b[1:]
		}
		if p.flags&flagPriority != 0 {
			if len(b) < 5 {
				p.broken = true
				return
			}
			b = b[5:]
		}
		if pad > len(b) {
			p.broken = true
			return
		}
		p.block = append(p.block[:0], b[:len(b)-pad]...)
		p.blockStream = p.stream
		p.inBlock = true
		if p.flags&flagEndHeaders != 0 {
			p.endBlock()
		}
	case frameContinuation:
		if !p.inBlock || p.stream != p.blockStream {
			p.broken = true
			return
		}
		p.block = append(p.block, b...)
		if p.flags&flagEndHeaders != 0 {
			p.endBlock()
		}
	}
}

// priority formats a PRIORITY frame's payload as
// streamID:exclusive:dependsOn:weight, the weight as RFC 9113 5.3.2 states
// it (the wire byte plus one, 1 to 256).
func priority(stream uint32, b []byte) string {
	dep := binary.BigEndian.Uint32(b)
	excl := dep >> 31
	return fmt.Sprintf("%d:%d:%d:%d", stream, excl, dep&0x7fffffff, int(b[4])+1)
}

// endBlock decodes a whole header block; a stream's first block is a
// request, later ones are trailers.
func (p *h2Parser) endBlock() {
	p.inBlock = false
	fields, err := p.dec.DecodeFull(p.block)
	if err != nil {
		p.broken = true
		return
	}
	if p.blockStream <= p.lastStream {
		return // trailers
	}
	p.lastStream = p.blockStream
	var pseudo []string
	names := []string{}
	for _, f := range fields {
		if !f.IsPseudo() {
			names = append(names, f.Name)
			continue
		}
		switch f.Name {
		case ":method":
			pseudo = append(pseudo, "m")
		case ":authority":
			pseudo = append(pseudo, "a")
		case ":scheme":
			pseudo = append(pseudo, "s")
		case ":path":
			pseudo = append(pseudo, "p")
		}
	}
	if !p.sawHeaders {
		p.sawHeaders = true
		wu := p.windowUpdate
		if wu == "" {
			wu = "00"
		}
		prio := strings.Join(p.priorities, ",")
		if prio == "" {
			prio = "0"
		}
		p.out.http2(strings.Join(p.settings, ";") + "|" + wu + "|" + prio + "|" + strings.Join(pseudo, ","))
	}
	p.out.request(names)
}
