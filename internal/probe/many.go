package probe

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Result is what RunAll learned about one of its URLs.
type Result struct {
	// URL is the URL as given.
	URL string
	// Report is what the probe measured; nil when Err is set.
	Report *Report
	// Err is why the URL has no report: a bad URL, a failed probe, or
	// the context ended before the probe started or while it ran (a probe
	// that was interrupted measured only part of the policy).
	Err error
	// Same is the index of the earlier result whose probe this one shares
	// because both URLs name the same target (scheme, host and port), or
	// -1: a target is probed once, whatever its URLs' paths.
	Same int
}

// RunAll probes urls with the options o (whose URL is ignored), running at
// most limit probes at once (limit < 1 means 1), and returns one Result per
// URL, in the order of urls. URLs that name the same target share one
// probe, on the first one's path. A failed probe does not stop the others.
// When ctx is done, the probes that have not started never start and the
// running ones stop; their results carry the error. o.Progress, if not
// nil, receives each probe's lines prefixed with its target, one call at a
// time. The error is for bad options (o.Proxy): then nothing ran.
func RunAll(ctx context.Context, o Options, urls []string, limit int) ([]Result, error) {
	if o.Proxy != "" {
		if _, err := checkProxy(o.Proxy); err != nil {
			return nil, err
		}
	}
	res := make([]Result, len(urls))
	var probes []int // indexes of the results that run a probe
	keys := make([]string, len(urls))
	first := make(map[string]int)
	for i, raw := range urls {
		res[i] = Result{URL: raw, Same: -1}
		u, err := checkURL(raw)
		if err != nil {
			res[i].Err = err
			continue
		}
		key := targetKey(u.Scheme, hostPort(u))
		keys[i] = key
		if j, ok := first[key]; ok {
			res[i].Same = j
			continue
		}
		first[key] = i
		probes = append(probes, i)
	}

	var mu sync.Mutex // serializes o.Progress
	progress := o.Progress
	var g errgroup.Group
	g.SetLimit(max(1, limit))
	for _, i := range probes {
		po := o
		po.URL = urls[i]
		if progress != nil {
			prefix := "[" + keys[i] + "] "
			po.Progress = func(msg string) {
				mu.Lock()
				defer mu.Unlock()
				progress(prefix + msg)
			}
		}
		// Go waits for a free slot; the running probes honour ctx, so
		// once it is canceled the slots free up soon, and the probes
		// still to come return at once.
		g.Go(func() error {
			if ctx.Err() != nil {
				res[i].Err = fmt.Errorf("not probed: %w", context.Cause(ctx))
				return nil
			}
			r, err := Run(ctx, po)
			if err == nil && ctx.Err() != nil {
				// Run stops its idle search quietly when ctx ends: its
				// report would pass a partial search off as a result.
				err = fmt.Errorf("interrupted: %w", context.Cause(ctx))
			}
			if err != nil {
				res[i].Err = err
			} else {
				res[i].Report = r
			}
			return nil
		})
	}
	g.Wait()
	for i := range res {
		if j := res[i].Same; j >= 0 {
			res[i].Report, res[i].Err = res[j].Report, res[j].Err
		}
	}
	return res, nil
}

// targetKey names a target as warmpool's pools do: scheme://host:port,
// host in lower case.
func targetKey(scheme, hostPort string) string {
	return strings.ToLower(scheme + "://" + hostPort)
}
