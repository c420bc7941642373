package dashboard

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// This file is a minimal client of the Chrome DevTools Protocol, enough
// for the tests to load the dashboard in headless Chromium, watch it update
// itself, read its console and take screenshots. Chromium runs with
// --remote-debugging-pipe: it reads commands from its file descriptor 3
// and writes answers and events to its descriptor 4, each a JSON message
// ended by a NUL byte. No WebSocket, no port to find.

// cdpTimeout bounds each command: generous, as the tests assert on what
// happens, never on how fast.
const cdpTimeout = 60 * time.Second

// browser is one headless Chromium, closed when its test ends.
type browser struct {
	cmd    *exec.Cmd
	logf   string        // chromium's standard error
	done   chan struct{} // closed when the reader ends (chromium exited)
	wmu    sync.Mutex    // serializes writes to w
	w      *os.File      // commands, to chromium's descriptor 3
	mu     sync.Mutex
	nextID int
	wait   map[int]chan cdpMessage // commands sent, by id
	events []cdpMessage
}

type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// startBrowser starts headless Chromium (bin) driven through the DevTools
// protocol, and closes it when the test ends.
func startBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	cmdR, cmdW, err := os.Pipe()
	require.NoError(t, err)
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "chromium.log"))
	require.NoError(t, err)
	defer logf.Close()
	b := &browser{
		cmd: exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--hide-scrollbars", "--user-data-dir="+filepath.Join(dir, "profile"),
			"--remote-debugging-pipe", "about:blank"),
		logf: logf.Name(),
		done: make(chan struct{}),
		w:    cmdW,
		wait: map[int]chan cdpMessage{},
	}
	b.cmd.ExtraFiles = []*os.File{cmdR, outW} // descriptors 3 and 4
	b.cmd.Stderr = logf
	err = b.cmd.Start()
	cmdR.Close()
	outW.Close()
	if err != nil {
		cmdW.Close()
		outR.Close()
		require.NoError(t, err, "start chromium")
	}
	go b.read(outR)
	t.Cleanup(b.close)
	return b
}

// read dispatches chromium's messages until it exits: answers to the
// commands waiting for them, events to b.events.
func (b *browser) read(r *os.File) {
	defer close(b.done)
	defer r.Close()
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		data, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(data[:len(data)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			ch := b.wait[m.ID]
			delete(b.wait, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m // buffered
			}
			continue
		}
		b.events = append(b.events, m)
		b.mu.Unlock()
	}
}

// call sends the command method with params to the session (the browser
// itself when session is empty) and returns its result.
func (b *browser) call(session, method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.wait[id] = ch
	b.mu.Unlock()
	msg, err := json.Marshal(struct {
		ID        int    `json:"id"`
		SessionID string `json:"sessionId,omitempty"`
		Method    string `json:"method"`
		Params    any    `json:"params,omitempty"`
	}{id, session, method, params})
	if err != nil {
		return nil, err
	}
	b.wmu.Lock()
	_, err = b.w.Write(append(msg, 0))
	b.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	timer := time.NewTimer(cdpTimeout)
	defer timer.Stop()
	var m cdpMessage
	select {
	case m = <-ch:
	case <-b.done:
		select {
		case m = <-ch:
		default:
			return nil, fmt.Errorf("%s: chromium exited; its log ends:\n%s", method, b.logTail())
		}
	case <-timer.C:
		return nil, fmt.Errorf("%s: no answer in %v", method, cdpTimeout)
	}
	if m.Error != nil {
		return nil, fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
	}
	return m.Result, nil
}

func (b *browser) logTail() string {
	data, _ := os.ReadFile(b.logf)
	return lastLines(string(data), 20)
}

// close asks chromium to exit, kills it if it does not, and waits for it.
func (b *browser) close() {
	select {
	case <-b.done:
	default:
		b.call("", "Browser.close", nil)
	}
	b.w.Close()
	exited := make(chan struct{})
	go func() {
		b.cmd.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		b.cmd.Process.Kill()
		<-exited
	}
	<-b.done
}

// tab is one page of a browser.
type tab struct {
	b       *browser
	session string
}

// newTab opens a blank page and enables the events the tests read: the
// console, the log and exceptions.
func (b *browser) newTab(t *testing.T) *tab {
	t.Helper()
	res, err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"})
	require.NoError(t, err)
	var target struct{ TargetID string }
	require.NoError(t, json.Unmarshal(res, &target))
	res, err = b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true})
	require.NoError(t, err)
	var att struct{ SessionID string }
	require.NoError(t, json.Unmarshal(res, &att))
	tb := &tab{b: b, session: att.SessionID}
	for _, domain := range []string{"Runtime", "Log", "Page"} {
		_, err := b.call(tb.session, domain+".enable", nil)
		require.NoError(t, err)
	}
	return tb
}

// navigate loads url in the tab and waits until its document is complete.
func (tb *tab) navigate(t *testing.T, url string) {
	t.Helper()
	res, err := tb.b.call(tb.session, "Page.navigate", map[string]any{"url": url})
	require.NoError(t, err)
	var nav struct{ ErrorText string }
	require.NoError(t, json.Unmarshal(res, &nav))
	require.Empty(t, nav.ErrorText, "navigate to %s", url)
	tb.waitFor(t, "the page to load", `document.readyState === "complete"`)
}

// html returns the tab's document as HTML, read through the DevTools
// protocol (so even with scripts off).
func (tb *tab) html(t *testing.T) string {
	t.Helper()
	res, err := tb.b.call(tb.session, "DOM.getDocument", nil)
	require.NoError(t, err)
	var doc struct{ Root struct{ NodeID int } }
	require.NoError(t, json.Unmarshal(res, &doc))
	res, err = tb.b.call(tb.session, "DOM.getOuterHTML", map[string]any{"nodeId": doc.Root.NodeID})
	require.NoError(t, err)
	var out struct{ OuterHTML string }
	require.NoError(t, json.Unmarshal(res, &out))
	return out.OuterHTML
}

// eval evaluates the JavaScript expression in the tab (awaiting a promise)
// and decodes its value into out.
func (tb *tab) eval(expr string, out any) error {
	res, err := tb.b.call(tb.session, "Runtime.evaluate", map[string]any{
		"expression": expr, "returnByValue": true, "awaitPromise": true,
	})
	if err != nil {
		return err
	}
	var r struct {
		Result struct {
			Value json.RawMessage
		}
		ExceptionDetails *struct {
			Text      string
			Exception struct{ Description string }
		}
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	if e := r.ExceptionDetails; e != nil {
		return fmt.Errorf("%s: %s %s", expr, e.Text, e.Exception.Description)
	}
	if out == nil {
		return nil
	}
	if len(r.Result.Value) == 0 {
		return errors.New(expr + ": no value")
	}
	return json.Unmarshal(r.Result.Value, out)
}

// waitFor polls the JavaScript condition cond until it holds, and fails
// the test if it does not within a generous deadline.
func (tb *tab) waitFor(t *testing.T, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(cdpTimeout)
	for {
		var ok bool
		err := tb.eval("!!("+cond+")", &ok)
		require.NoError(t, err, "waiting for %s", what)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			errs := tb.consoleErrors()
			if len(errs) > 3 {
				errs = append(errs[:3], fmt.Sprintf("and %d more", len(errs)-3))
			}
			require.FailNow(t, "timed out waiting for "+what, "condition %s; console errors %q", cond, errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// consoleErrors returns what the tab reported as errors: console.error and
// console.assert calls, uncaught exceptions, and log entries of level
// error (failed loads, Content-Security-Policy violations).
func (tb *tab) consoleErrors() []string {
	tb.b.mu.Lock()
	defer tb.b.mu.Unlock()
	var errs []string
	for _, m := range tb.b.events {
		if m.SessionID != tb.session {
			continue
		}
		switch m.Method {
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string
				Args []struct {
					Value       any
					Description string
				}
			}
			if json.Unmarshal(m.Params, &p) == nil && (p.Type == "error" || p.Type == "assert") {
				var parts []string
				for _, a := range p.Args {
					parts = append(parts, fmt.Sprint(a.Value, a.Description))
				}
				errs = append(errs, "console."+p.Type+": "+strings.Join(parts, " "))
			}
		case "Runtime.exceptionThrown":
			var p struct {
				ExceptionDetails struct {
					Text      string
					Exception struct{ Description string }
				}
			}
			json.Unmarshal(m.Params, &p)
			errs = append(errs, "exception: "+p.ExceptionDetails.Text+" "+p.ExceptionDetails.Exception.Description)
		case "Log.entryAdded":
			var p struct {
				Entry struct{ Level, Source, Text, URL string }
			}
			if json.Unmarshal(m.Params, &p) == nil && p.Entry.Level == "error" {
				errs = append(errs, "log ("+p.Entry.Source+"): "+p.Entry.Text+" "+p.Entry.URL)
			}
		}
	}
	return errs
}

// screenshot writes a PNG of the page, width pixels wide and height high
// (0 for the whole page), to file.
func (tb *tab) screenshot(t *testing.T, file string, width, height int) {
	t.Helper()
	metrics := func(height int) {
		_, err := tb.b.call(tb.session, "Emulation.setDeviceMetricsOverride", map[string]any{
			"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false,
		})
		require.NoError(t, err)
	}
	if height == 0 {
		metrics(800)
		require.NoError(t, tb.eval("document.documentElement.scrollHeight", &height))
	}
	metrics(height)
	res, err := tb.b.call(tb.session, "Page.captureScreenshot", map[string]any{"format": "png"})
	require.NoError(t, err)
	var shot struct{ Data string }
	require.NoError(t, json.Unmarshal(res, &shot))
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	require.NoError(t, err)
	require.Equal(t, []byte("\x89PNG\r\n\x1a\n"), png[:8], "a PNG")
	require.NoError(t, os.WriteFile(file, png, 0o644))
}
