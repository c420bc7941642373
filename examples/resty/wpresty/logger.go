package wpresty

import (
	"fmt"
	"log"
	"runtime"
	"strings"

	"github.com/go-resty/resty/v2"
)

// notHTTPTransport is the error resty logs when a setting needs an
// *http.Transport and the client has another RoundTripper (resty v2.17.2,
// client.go:1365). The tests pin it: a resty that words it differently
// fails them rather than this guard going quiet.
const notHTTPTransport = "current transport is not an *http.Transport instance"

// Where each setting goes with warmpool.
const (
	useProxy   = "warmpool.Config.Exits[i].Proxy (one Exit per proxy)"
	useNoProxy = "warmpool.Config.Exits (list the direct exit, warmpool.Exit{}, to send directly)"
	useTLS     = "warmpool.Config.TLSClientConfig"
)

// useFor returns the warmpool setting that does the job of resty's method,
// for each method that needs an *http.Transport.
func useFor(method string) (string, bool) {
	const noClientCAs = " (ClientCAs is a server's setting: a client has no use for it)"
	switch method {
	case "SetProxy":
		return useProxy, true
	case "RemoveProxy":
		return useNoProxy, true
	case "SetTLSClientConfig":
		return useTLS, true
	case "SetRootCertificate", "SetRootCertificateFromString":
		return useTLS + ".RootCAs", true
	case "SetCertificates":
		return useTLS + ".Certificates", true
	case "SetClientRootCertificate", "SetClientRootCertificateFromString":
		return useTLS + noClientCAs, true
	}
	return "", false
}

const restyClientPrefix = "github.com/go-resty/resty/v2.(*Client)."

// guardLogger is the Logger Attach gives the client: it passes everything to
// next, and records resty's "not an *http.Transport" errors in its guard.
type guardLogger struct {
	g    *guard
	next resty.Logger
}

func (l *guardLogger) Errorf(format string, v ...any) {
	if strings.Contains(fmt.Sprintf(format, v...), notHTTPTransport) {
		method := restyCaller()
		use, ok := useFor(method)
		if !ok {
			method, use = "setting that needs an *http.Transport", "the matching warmpool.Config field"
		}
		l.g.ignore(&SettingError{Method: method, Use: use})
	}
	l.next.Errorf(format, v...)
}

func (l *guardLogger) Warnf(format string, v ...any)  { l.next.Warnf(format, v...) }
func (l *guardLogger) Debugf(format string, v ...any) { l.next.Debugf(format, v...) }

// restyCaller returns the name of the resty Client method on the stack that
// useFor knows (SetRootCertificate logs through handleCAs, for example),
// or "".
func restyCaller() string {
	var pcs [32]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	for {
		f, more := frames.Next()
		if name, ok := strings.CutPrefix(f.Function, restyClientPrefix); ok {
			if _, known := useFor(name); known {
				return name
			}
		}
		if !more {
			return ""
		}
	}
}

// stderrLogger writes as resty's default Logger does (util.go:36-64).
type stderrLogger struct{ l *log.Logger }

func (s stderrLogger) Errorf(format string, v ...any) { s.l.Printf("ERROR RESTY "+format, v...) }
func (s stderrLogger) Warnf(format string, v ...any)  { s.l.Printf("WARN RESTY "+format, v...) }
func (s stderrLogger) Debugf(format string, v ...any) { s.l.Printf("DEBUG RESTY "+format, v...) }
