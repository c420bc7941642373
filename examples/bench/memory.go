package main

// The memory scenario: warmpool's heap over a crawl of many host names,
// during the crawl and once it is over (design invariant 7: no map, ring
// or histogram grows without limit with hosts or time).

import (
	"fmt"
	"runtime"
	"time"

	"github.com/warmpool/warmpool"
)

// mb is a megabyte, 10^6 bytes.
const mb = 1e6

// memory: o.MemHosts host names × 1 GET from o.Workers workers, through
// warmpool with its defaults but IdleConnTimeout o.MemIdle and one exit;
// then o.MemConcHosts names the same way with Config.Concurrency on. Its
// checks: the heap once the crawl is over (its sockets idled out, its
// pools forgotten) is at most 2.5 MB above the heap before the Transport;
// the table of adaptive limits (Snapshot().Concurrency) holds at most
// 1,024 rows.
func memory(o crawlOptions, rep *crawlReport) error {
	r, heap, _, err := memoryRun(o, o.MemHosts, false)
	if err != nil {
		return err
	}
	rep.add(r)
	rep.check(atMost("memory: heap after idle − start", float64(heap.AfterIdle-heap.Start)/mb, 2.5, " MB"))
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
// The heap is the whole process's: the hosts' server and the proxy run in
// it too, so the peak counts both ends of every open socket. Once the
// sockets are closed only their maps' emptied buckets stay behind.
func memoryRun(o crawlOptions, n int, concurrency bool) (crawlRow, heapFigures, int, error) {
	var h heapFigures
	hs, pxs, err := startCrawl(n, 1, o.RTT, true)
	if err != nil {
		return crawlRow{}, h, 0, err
	}
	defer stopCrawl(hs, pxs)
	cfg := warmpool.Config{TLSClientConfig: hs.clientTLS, Exits: proxyExits(pxs), IdleConnTimeout: o.MemIdle}
	name := fmt.Sprintf("warmpool defaults, IdleConnTimeout %v", o.MemIdle)
	if concurrency {
		cfg.Concurrency.Enable = true
		name += ", Concurrency on"
	}
	wait := max(o.MemIdle, o.MemForget)
	h.Start = heapAfterGC()
	w, name, err := newWarmpool(cfg, name, false)
	if err != nil {
		return crawlRow{}, h, 0, err
	}
	peak := sampleHeap(100 * time.Millisecond)
	var limits int
	r := measure(hs, "memory", name, w, hs.urls, o.Workers, func() {
		h.Peak = peak.stop()
		limits = len(w.Snapshot().Concurrency)
		time.Sleep(wait)
		h.AfterIdle = heapAfterGC()
		limits = max(limits, len(w.Snapshot().Concurrency))
		w.done()
	})
	r.Note = fmt.Sprintf("%d names × 1 GET; process heap (servers and proxy included): start %.1f MB, peak %.1f MB (+%.2f MB per 1,000 hosts), %v after the last request +%.2f MB; open sockets at the end %d",
		n, float64(h.Start)/mb, float64(h.Peak)/mb, float64(h.Peak-h.Start)/mb/(float64(n)/1000), wait, float64(h.AfterIdle-h.Start)/mb, w.last.Total.OpenSockets)
	if concurrency {
		r.Note += fmt.Sprintf("; len(Snapshot().Concurrency) %d", limits)
	}
	return r, h, limits, nil
}

// heapAfterGC collects garbage and returns the heap in use. It collects
// twice: a sync.Pool keeps its objects through one collection (its victim
// cache), and net/http's server pools its connections' bufio buffers.
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
