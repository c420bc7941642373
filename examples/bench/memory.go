package main

// The memory scenario: warmpool's heap over a crawl of many host names,
// during the crawl and once it is over (design invariant 7: no map, ring
// or histogram grows without limit with hosts or time).

import (
	"cmp"
	"fmt"
	"runtime"
	"time"

	"github.com/warmpool/warmpool"
)

// mb is a megabyte, 10^6 bytes.
const mb = 1e6

// peakPer1000Before is the memory scenario's peak heap above the start per
// 1,000 hosts, in MB, before issue 19's changes. Measured on 2026-12-04 on
// d773fb3 (Config.IdleCap), this scenario copied there (only
// newWarmpool's "unbounded" adapted, to IdleCap -1), with
//
//	go run ./examples/bench crawl -scenarios memory
//
// (20,000 hosts; go1.26.8, linux/amd64, 2 CPUs): 20.51 and 22.78 MB in two
// runs. The lower is kept, which makes half of it the stricter limit.
//
// It compares only at the same number of hosts (peakBeforeHosts): the peak
// does not grow in proportion to them. Since issue 19 warmpool keeps a
// host's pool and counters for 30 s after its last request, so the peak
// follows the hosts crawled in 30 s, not all of them: 76.5 MB at 5,000
// hosts, 83.5 MB at 20,000 (2026-12-04).
const (
	peakPer1000Before = 20.51
	peakBeforeHosts   = 20000
)

// memory: o.MemHosts host names × 1 GET from o.Workers workers, through
// warmpool with its defaults but IdleConnTimeout o.MemIdle and one exit;
// then o.MemConcHosts names the same way with Config.Concurrency on. Its
// checks (issue 19): the heap once the crawl is over (its sockets idled
// out, its pools forgotten) is at most 2.5 MB above the heap before the
// Transport; the peak heap per 1,000 hosts is at most half of what it was
// before (peakPer1000Before; checked at its number of hosts only); the
// table of adaptive limits (Snapshot().Concurrency) holds at most 1,024
// rows.
func memory(o crawlOptions, rep *crawlReport) error {
	r, heap, _, err := memoryRun(o, o.MemHosts, false)
	if err != nil {
		return err
	}
	rep.add(r)
	rep.check(atMost("memory: heap after idle − start", float64(heap.AfterIdle-heap.Start)/mb, 2.5, " MB"))
	if o.MemHosts == peakBeforeHosts {
		rep.check(atMost(fmt.Sprintf("memory: peak heap − start per 1,000 hosts vs half of before (%s MB, measured on d773fb3 with this same scenario)", num(peakPer1000Before)),
			heap.peakPer1000(o.MemHosts), peakPer1000Before/2, " MB"))
	}
	r, _, limits, err := memoryRun(o, o.MemConcHosts, true)
	if err != nil {
		return err
	}
	rep.add(r)
	rep.check(atMost("memory, Concurrency on: len(Snapshot().Concurrency)", float64(limits), 1024, ""))
	return nil
}

// heapFigures are HeapAlloc readings of a memory run.
type heapFigures struct {
	// Start is after a GC, before the Transport is made; Peak the most
	// sampled during the crawl (garbage included: no GC is forced);
	// AfterIdle after a GC, once the crawl is over, with the Transport
	// still open.
	Start, Peak, AfterIdle int64
}

// memoryRun crawls n host names, 1 GET each, and reads the heap: before
// making the Transport, every 100 ms during the crawl, and after a GC once
// max(o.MemIdle, o.MemForget) has passed after the last request. It
// returns the row, the readings and the most rows Snapshot().Concurrency
// had (at the end of the crawl and after the wait).
//
// The hosts, their DNS and the proxy run in a child process
// (startTargetsChild), so the heap read is this process's: warmpool's and
// the crawl's (its URLs, its workers), not the servers'.
func memoryRun(o crawlOptions, n int, concurrency bool) (r crawlRow, h heapFigures, limits int, err error) {
	tc, err := startTargetsChild(n, o.RTT)
	if err != nil {
		return r, h, 0, err
	}
	defer func() { err = cmp.Or(err, tc.close()) }()
	cfg := warmpool.Config{TLSClientConfig: tc.clientTLS, Exits: tc.exits, IdleConnTimeout: o.MemIdle}
	name := fmt.Sprintf("warmpool defaults, IdleConnTimeout %v", o.MemIdle)
	if concurrency {
		cfg.Concurrency.Enable = true
		name += ", Concurrency on"
	}
	wait := max(o.MemIdle, o.MemForget)
	h.Start = heapAfterGC()
	w, name, err := newWarmpool(cfg, name, false)
	if err != nil {
		return r, h, 0, err
	}
	peak := sampleHeap(100 * time.Millisecond)
	r = measure(tc, "memory", name, w, tc.urls, o.Workers, func() {
		h.Peak = peak.stop()
		limits = len(w.Snapshot().Concurrency)
		time.Sleep(wait)
		h.AfterIdle = heapAfterGC()
		limits = max(limits, len(w.Snapshot().Concurrency))
		w.done()
	})
	r.Note = fmt.Sprintf("%d names × 1 GET; heap of this process (the servers run in another): start %.1f MB, peak %.1f MB, %.2f MB per 1,000 hosts above the start; %v after the last request %+.2f MB; open sockets at the end %d",
		n, float64(h.Start)/mb, float64(h.Peak)/mb, h.peakPer1000(n), wait, float64(h.AfterIdle-h.Start)/mb, w.last.Total.Sockets.Open)
	if concurrency {
		r.Note += fmt.Sprintf("; len(Snapshot().Concurrency) %d", limits)
	}
	return r, h, limits, nil
}

// peakPer1000 is the peak above the start per 1,000 of n hosts, in MB.
func (h heapFigures) peakPer1000(n int) float64 {
	return float64(h.Peak-h.Start) / mb / (float64(n) / 1000)
}

// heapAfterGC collects garbage and returns the heap in use. It collects
// twice: a sync.Pool keeps its objects through one collection (its victim
// cache), and net/http pools its connections' bufio buffers.
func heapAfterGC() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// heapSampler reads the heap in use (HeapAlloc) at a fixed interval and
// keeps the most it saw.
type heapSampler struct {
	quit chan struct{}
	peak chan int64
}

// sampleHeap starts reading the heap every interval until stop.
func sampleHeap(every time.Duration) *heapSampler {
	s := &heapSampler{quit: make(chan struct{}), peak: make(chan int64, 1)}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		var most int64
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			most = max(most, int64(ms.HeapAlloc))
			select {
			case <-s.quit:
				s.peak <- most
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop stops the sampler and returns the most heap it saw.
func (s *heapSampler) stop() int64 {
	close(s.quit)
	return <-s.peak
}
