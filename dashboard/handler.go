package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warmpool/warmpool"
)

// Limits of the HTML page of Handler. The JSON form has no such limits: it
// holds every target and every event that Transport.Events returns.
const (
	pageEvents  = 50  // most recent socket events shown
	pageTargets = 100 // busiest targets shown
	pageBlocks  = 100 // blocks shown, those avoided now first
)

// Handler returns an http.Handler that serves rt's Snapshot, taken anew on
// every request, for people and for programs. It is safe for concurrent
// use, as rt is.
//
// A GET request with the query parameter format=json, or without a format
// parameter and with an Accept header that prefers application/json, gets
// the Snapshot as indented JSON, with the Killers ranked from it and the
// recent socket events of rt.Events, oldest first:
//
//	{"snapshot": {...}, "killers": [...], "events": [...]}
//
// Field names are those of the Go types; durations are integers in
// nanoseconds, as encoding/json writes a time.Duration, and times are in RFC
// 3339 format. In events, Kind is a string ("dialed", "prewarmed", "retired"
// or "closed"). Killers and events are empty lists, never null.
//
// Any other GET request (or format=html) gets a self-contained HTML page
// that loads nothing else: the status, the totals, tables of the exits,
// the blocks of exits by targets, the targets with the limits applied to
// them, the handshake killers, warm and cold latency, closes by reason,
// adaptive concurrency limits (when on) and the 50 most recent socket
// events. The page shows the 100 busiest targets, and 100 blocks, those
// whose exit is avoided now first.
//
// The page updates itself: its inline script asks the handler, at the
// page's own URL, for the JSON and for the page again every 5 seconds, or
// at the interval of the query parameter refresh (a Go duration from 100ms
// to 1h; refresh=0 serves the page without its script). It keeps a sample
// of each JSON answer for 10 minutes, in the browser only, and draws from
// them the keep-alive ratio, requests and handshakes per second, cold
// requests and the handshake tax of the last minute, the exits' health and
// ejections, and the blocks per target; the totals and tables it swaps in
// from the page. Without JavaScript the page shows the snapshot it was
// rendered with. Its Content-Security-Policy allows its own script and
// style sheet (by their hashes) and requests to its own origin, nothing
// else.
//
// HEAD is answered like GET, without the body. Other methods get 405 Method
// Not Allowed; an unknown format or a bad refresh gets 400 Bad Request.
// Responses carry Cache-Control: no-store.
//
// Neither form shows a proxy URL or credentials: exits appear by name, which
// never holds credentials. Both show targets and exit names, so
// serve the handler only where those may be seen, for example on an
// internal debug port:
//
//	mux := http.NewServeMux()
//	mux.Handle("/debug/warmpool", dashboard.Handler(rt))
func Handler(rt *warmpool.Transport) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveSnapshot(rt, w, r)
	})
}

func serveSnapshot(rt *warmpool.Transport, w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	asJSON, ok := wantJSON(r)
	if !ok {
		http.Error(w, "unknown format: use format=json or format=html", http.StatusBadRequest)
		return
	}
	refresh, ok := refreshOf(r)
	if !ok {
		http.Error(w, "bad refresh: use a duration from "+minRefresh.String()+" to "+maxRefresh.String()+", or 0 for none", http.StatusBadRequest)
		return
	}
	snap := rt.Snapshot()
	killers := Killers(snap)
	events := rt.Events()

	var buf bytes.Buffer
	var ctype string
	if asJSON {
		ctype = "application/json"
		if err := writeSnapshotJSON(&buf, snap, killers, events); err != nil {
			http.Error(w, "encoding the snapshot: "+err.Error(), http.StatusInternalServerError)
			return
		}
	} else {
		ctype = "text/html; charset=utf-8"
		p := newPage(snap, killers, events)
		p.RefreshMS = refresh.Milliseconds()
		if err := pageTemplate.Execute(&buf, p); err != nil {
			http.Error(w, "rendering the snapshot: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if !asJSON {
		h.Set("Content-Security-Policy", pageCSP)
	}
	h.Add("Vary", "Accept")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// wantJSON reports whether r asks for JSON, and false for ok when its format
// parameter is unknown.
func wantJSON(r *http.Request) (asJSON, ok bool) {
	switch r.URL.Query().Get("format") {
	case "json":
		return true, true
	case "html":
		return false, true
	case "":
	default:
		return false, false
	}
	// Content negotiation: JSON only when the client prefers it to HTML.
	var qJSON, qHTML float64
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				q = v
			}
		}
		switch mt {
		case "application/json":
			qJSON = max(qJSON, q)
		case "text/html", "application/xhtml+xml":
			qHTML = max(qHTML, q)
		}
	}
	return qJSON > 0 && qJSON > qHTML, true
}

// The page's live updates: every defaultRefresh unless its refresh
// parameter says otherwise.
const (
	defaultRefresh = 5 * time.Second
	minRefresh     = 100 * time.Millisecond
	maxRefresh     = time.Hour
)

// refreshOf returns the interval of live updates that r asks for (0 for
// none), and false for ok when its refresh parameter is no duration from
// minRefresh to maxRefresh, or 0.
func refreshOf(r *http.Request) (d time.Duration, ok bool) {
	switch s := r.URL.Query().Get("refresh"); s {
	case "":
		return defaultRefresh, true
	case "0":
		return 0, true
	default:
		d, err := time.ParseDuration(s)
		if err != nil || d < minRefresh || d > maxRefresh {
			return 0, false
		}
		return d, true
	}
}

// snapshotJSON is the JSON form of Handler.
type snapshotJSON struct {
	Snapshot warmpool.Snapshot `json:"snapshot"`
	Killers  []Killer          `json:"killers"`
	Events   []eventJSON       `json:"events"`
}

// eventJSON is a SocketEvent whose Kind is a string.
type eventJSON struct {
	warmpool.SocketEvent
	Kind string
}

func writeSnapshotJSON(buf *bytes.Buffer, snap warmpool.Snapshot, killers []Killer, events []warmpool.SocketEvent) error {
	v := snapshotJSON{Snapshot: snap, Killers: killers, Events: make([]eventJSON, len(events))}
	if v.Killers == nil {
		v.Killers = []Killer{}
	}
	for i, ev := range events {
		v.Events[i] = eventJSON{SocketEvent: ev, Kind: ev.Kind.String()}
	}
	enc := json.NewEncoder(buf)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// expvarMu serializes PublishExpvar's check and publication: expvar's
// registry is process-wide, and expvar.Publish panics on a name taken
// between the check and the publication.
var expvarMu sync.Mutex

// PublishExpvar publishes rt's Snapshot in package expvar under name, as an
// expvar.Func that takes a new Snapshot each time it is read, so that it
// appears in expvar's JSON (served at /debug/vars by expvar's handler). It
// returns an error, and publishes nothing, if name is empty or already
// published. It is safe for concurrent use.
//
// The expvar package cannot remove a variable: rt stays published, and
// reachable, for the life of the process. After rt's Close, the variable
// reports its final Snapshot. Publish a Transport that lives as long as the
// process, under a name used once.
func PublishExpvar(name string, rt *warmpool.Transport) error {
	if name == "" {
		return errors.New("warmpool: dashboard.PublishExpvar: empty name")
	}
	expvarMu.Lock()
	defer expvarMu.Unlock()
	if expvar.Get(name) != nil {
		return fmt.Errorf("warmpool: dashboard.PublishExpvar: expvar %q is already published", name)
	}
	expvar.Publish(name, expvar.Func(func() any { return rt.Snapshot() }))
	return nil
}
