package fpserver

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// recorder is a sink that logs what a parser reports.
type recorder struct{ events []string }

func (r *recorder) request(names []string) {
	r.events = append(r.events, fmt.Sprint("request ", names))
}
func (r *recorder) http2(fp string)    { r.events = append(r.events, "http2 "+fp) }
func (r *recorder) goAway(code uint32) { r.events = append(r.events, fmt.Sprint("goaway ", code)) }

// feed gives b to write in pieces of size n (all at once if n is 0).
func feed(write func([]byte), b []byte, n int) {
	if n == 0 {
		write(b)
		return
	}
	for ; len(b) > 0; b = b[min(n, len(b)):] {
		write(b[:min(n, len(b))])
	}
}

const h1Stream = "\r\nGET / HTTP/1.1\r\nHost: a\r\nX-B: 1\r\n\r\n" +
	"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n\r\n\r\nX: 1\r\n\r\n" + // a body that looks like a request
	"POST /c HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\na\r\n0123456789\r\n0\r\nT: 1\r\n\r\n" +
	"GET /last HTTP/1.0\r\nA: b\r\n folded\r\n\r\n"

func TestH1ParserPieces(t *testing.T) {
	want := []string{"request [Host X-B]", "request [Host Content-Length]", "request [Transfer-Encoding]", "request [A]"}
	for _, n := range []int{0, 1, 2, 7} {
		r := &recorder{}
		p := &h1Parser{out: r}
		feed(p.write, []byte(h1Stream), n)
		assert.Equal(t, want, r.events, "pieces of %d", n)
	}
}

// h2Stream is a client's side of a connection after the preface.
func h2Stream(t testing.TB) []byte {
	var buf, blk bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	enc := hpack.NewEncoder(&blk)
	field := func(kv ...string) []byte {
		blk.Reset()
		for i := 0; i < len(kv); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return bytes.Clone(blk.Bytes())
	}
	_ = fr.WriteSettings(http2.Setting{ID: 1, Val: 65536}, http2.Setting{ID: 3, Val: 1000})
	_ = fr.WriteSettingsAck()
	_ = fr.WriteWindowUpdate(0, 15663105)
	_ = fr.WriteSettings(http2.Setting{ID: 4, Val: 1}) // only the first SETTINGS counts
	_ = fr.WritePriority(3, http2.PriorityParam{StreamDep: 1, Exclusive: true, Weight: 255})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true,
		BlockFragment: field(":method", "POST", ":scheme", "https", ":path", "/", ":authority", "a", "b", "1", "a", "2")})
	_ = fr.WriteData(1, false, make([]byte, 100))
	_ = fr.WriteData(1, false, nil)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true,
		BlockFragment: field("trailer", "x")})
	_ = fr.WritePing(false, [8]byte{})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: true, EndStream: true,
		BlockFragment: field(":method", "GET", ":path", "/2", "b", "1", "a", "2")}) // indexed by now
	_ = fr.WriteGoAway(3, http2.ErrCodeNo, []byte("debug"))
	return buf.Bytes()
}

func TestH2ParserPieces(t *testing.T) {
	want := []string{"http2 1:65536;3:1000|15663105|3:1:1:256|m,s,p,a", "request [b a]", "request [b a]", "goaway 0"}
	for _, n := range []int{0, 1, 5, 9, 10} {
		r := &recorder{}
		p := newH2Parser(r)
		feed(p.write, h2Stream(t), n)
		assert.Equal(t, want, r.events, "pieces of %d", n)
		assert.False(t, p.broken)
	}
}

// FuzzParsers feeds arbitrary bytes to both parsers, whole and in pieces:
// no panic, and the same reports however the bytes arrive.
func FuzzParsers(f *testing.F) {
	f.Add([]byte(h1Stream), uint8(3))
	f.Add(h2Stream(f), uint8(4))
	f.Fuzz(func(t *testing.T, b []byte, n uint8) {
		whole, pieces := &recorder{}, &recorder{}
		feed((&h1Parser{out: whole}).write, b, 0)
		feed((&h1Parser{out: pieces}).write, b, int(n%16)+1)
		if fmt.Sprint(whole.events) != fmt.Sprint(pieces.events) {
			t.Fatalf("h1: %q whole, %q in pieces of %d", whole.events, pieces.events, n%16+1)
		}
		whole, pieces = &recorder{}, &recorder{}
		feed(newH2Parser(whole).write, b, 0)
		feed(newH2Parser(pieces).write, b, int(n%16)+1)
		if fmt.Sprint(whole.events) != fmt.Sprint(pieces.events) {
			t.Fatalf("h2: %q whole, %q in pieces of %d", whole.events, pieces.events, n%16+1)
		}
	})
}
