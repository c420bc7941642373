package main

// The hosts scenario: a crawl over thousands of host names that never come
// back, and the sockets warmpool still holds once it has moved on (issue
// 19: the old IdleCap held 256).

import (
	"fmt"
	"time"

	"github.com/warmpool/warmpool"
)

// manyHosts: o.Names host names, 2 GETs each, each host's GETs back to back
// (h0, h0, h1, h1, … fed to o.Workers workers), through warmpool with its
// defaults and one exit. It counts warmpool's open sockets when the last
// request is done and again o.NamesLater after; its check: at most 256 at
// the end.
func manyHosts(o crawlOptions, rep *crawlReport) error {
	hs, pxs, err := startCrawl(o.Names, 1, o.RTT, true)
	if err != nil {
		return err
	}
	defer stopCrawl(hs, pxs)
	urls := make([]string, 0, 2*len(hs.urls))
	for _, u := range hs.urls {
		urls = append(urls, u, u)
	}
	w, name, err := newWarmpool(warmpool.Config{TLSClientConfig: hs.clientTLS, Exits: proxyExits(pxs)}, "warmpool defaults, 1 exit", false)
	if err != nil {
		return err
	}
	var atEnd, later int
	r := measure(hs, "many hosts", name, w, urls, o.Workers, func() {
		atEnd = w.Snapshot().Total.Sockets.Open
		time.Sleep(o.NamesLater)
		later = w.Snapshot().Total.Sockets.Open
		w.done()
	})
	r.Note = fmt.Sprintf("%d names × 2 GETs; warmpool's open sockets: %d when the last request is done, %d %v later; %s; %s",
		o.Names, atEnd, later, o.NamesLater, wpNote(w.last), closesNote(w.last.Total))
	rep.add(r)
	rep.check(atMost("hosts: warmpool open sockets when the last request is done", float64(atEnd), 256, ""))
	return nil
}
