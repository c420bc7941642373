package fpserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"regexp"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refragment re-frames the handshake bytes of the TLS records b into
// records carrying at most size bytes each, as TLS allows for handshake
// messages (RFC 8446 5.1).
func refragment(t testing.TB, b []byte, size int) []byte {
	t.Helper()
	var msg []byte
	for len(b) > 0 {
		require.GreaterOrEqual(t, len(b), 5)
		n := int(binary.BigEndian.Uint16(b[3:5]))
		msg = append(msg, b[5:5+n]...)
		b = b[5+n:]
	}
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, 22, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

func TestReadClientHelloSplit(t *testing.T) {
	records := readHex(t, "arkime-tls-split-client-hello.hex")
	want, err := ParseClientHello(records)
	require.NoError(t, err)
	for _, size := range []int{1, 3, 100, 1000, 16384} {
		split := refragment(t, records, size)
		next := []byte{23, 3, 3, 0, 1, 0} // whatever follows must stay unread
		for name, r := range map[string]io.Reader{
			"whole":    bytes.NewReader(append(split, next...)),
			"one-byte": iotest.OneByteReader(bytes.NewReader(append(split, next...))),
			"half":     iotest.HalfReader(bytes.NewReader(append(split, next...))),
		} {
			read, got, err := readClientHello(r)
			require.NoError(t, err, "size %d, %s", size, name)
			assert.Equal(t, split, read, "size %d, %s: the bytes to replay", size, name)
			assert.Equal(t, want.JA4(), got.JA4(), "size %d, %s", size, name)
			assert.Equal(t, want.JA3(), got.JA3(), "size %d, %s", size, name)
			rest, _ := io.ReadAll(r)
			assert.Equal(t, next, rest, "size %d, %s", size, name)
		}
		got, err := ParseClientHello(split)
		require.NoError(t, err)
		assert.Equal(t, want.JA4(), got.JA4(), "ParseClientHello, size %d", size)
	}
}

func TestReadClientHelloErrors(t *testing.T) {
	records := readHex(t, "arkime-tls-split-client-hello.hex")
	for _, tc := range []struct {
		name     string
		in       []byte
		wantRead []byte
		wantErr  error
	}{
		{"http", []byte("GET / HTTP/1.1\r\n\r\n"), []byte("GET /"), ErrNotClientHello},
		{"empty", nil, nil, io.EOF},
		{"truncated header", records[:3], records[:3], io.ErrUnexpectedEOF},
		{"truncated body", records[:100], records[:100], io.ErrUnexpectedEOF},
		{"alert", []byte{21, 3, 1, 0, 2, 2, 40}, []byte{21, 3, 1, 0, 2}, ErrNotClientHello},
		{"server hello", []byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, []byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, ErrNotClientHello},
		{"huge record", []byte{22, 3, 1, 0xff, 0xff}, []byte{22, 3, 1, 0xff, 0xff}, ErrNotClientHello},
		{"huge hello", []byte{22, 3, 1, 0, 4, 1, 0xff, 0, 0}, []byte{22, 3, 1, 0, 4, 1, 0xff, 0, 0}, ErrNotClientHello},
	} {
		read, _, err := readClientHello(bytes.NewReader(tc.in))
		assert.ErrorIs(t, err, tc.wantErr, tc.name)
		assert.Equal(t, string(tc.wantRead), string(read), tc.name)
	}
}

// TestParseClientHelloTruncated cuts a browser ClientHello at every length
// inside the message (fixing the lengths that frame it) and expects an
// error each time, never a panic.
func TestParseClientHelloTruncated(t *testing.T) {
	h, err := ParseClientHello(readHex(t, "ja4-tls-sni-stream0.hex"))
	require.NoError(t, err)
	full := h.Raw[4:]
	sid := int(full[34])
	ciphers := int(binary.BigEndian.Uint16(full[35+sid:]))
	extStart := 35 + sid + 2 + ciphers + 1 + int(full[35+sid+2+ciphers])
	for n := 0; n < len(full); n++ {
		msg := append([]byte{1, 0, byte(n >> 8), byte(n)}, full[:n]...)
		got, err := parseHandshake(msg)
		if n == extStart { // a ClientHello may have no extensions at all
			assert.NoError(t, err)
			assert.Empty(t, got.Extensions)
			continue
		}
		assert.Error(t, err, "body cut at %d of %d", n, len(full))
	}
	_, err = parseHandshake(nil)
	assert.ErrorIs(t, err, ErrNotClientHello)
}

func TestParseClientHelloUnknownExtensions(t *testing.T) {
	// A minimal ClientHello with an unassigned extension type (0x7777)
	// carrying arbitrary bytes, and an empty one: skipped by length.
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)       // random
	body = append(body, 0)                         // session id
	body = append(body, 0, 4, 0x13, 1, 0xaa, 0xaa) // ciphers, one GREASE
	body = append(body, 1, 0)                      // compression
	exts := []byte{0x77, 0x77, 0, 3, 0xff, 0xfe, 0xfd, 0x44, 0xcd, 0, 0, 0, 0x2b, 0, 3, 2, 3, 4}
	body = append(body, byte(len(exts)>>8), byte(len(exts)))
	body = append(body, exts...)
	msg := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	h, err := parseHandshake(msg)
	require.NoError(t, err)
	assert.Equal(t, []uint16{0x1301}, h.CipherSuites)
	assert.Equal(t, []uint16{0x7777, 0x44cd, 0x002b}, h.Extensions)
	assert.Equal(t, "t13i010300_", h.JA4()[:11])
	assert.Equal(t, "771,4865,30583-17613-43,,", h.JA3())
}

var ja4Shape = regexp.MustCompile(`^t(1[0-3]|s[23]|d[123]|00)[di]\d{4}[0-9a-zA-Z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$`)

func FuzzParseClientHello(f *testing.F) {
	for _, v := range published {
		f.Add(readHex(f, v.file))
	}
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseClientHello(b)
		read, h2, err2 := readClientHello(bytes.NewReader(b))
		if !bytes.HasPrefix(b, read) {
			t.Fatalf("readClientHello returned bytes that were not read")
		}
		if err != nil {
			if err2 == nil {
				t.Fatalf("readClientHello accepted what ParseClientHello rejected: %v", err)
			}
			return
		}
		if err2 != nil && !errors.Is(err2, ErrNotClientHello) {
			t.Fatalf("ParseClientHello accepted what readClientHello rejected: %v", err2)
		}
		if err2 == nil && h2.JA4() != h.JA4() {
			t.Fatalf("JA4 %s and %s", h.JA4(), h2.JA4())
		}
		if !ja4Shape.MatchString(h.JA4()) {
			t.Fatalf("JA4 %q", h.JA4())
		}
		_ = h.JA3Hash()
	})
}
