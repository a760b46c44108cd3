package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
)

// loadResult is what one load run measured.
type loadResult struct {
	Name     string
	Workers  int
	Elapsed  time.Duration
	Requests int
	Errors   int // transport errors
	Statuses map[int]int
	P50, P99 time.Duration
	Max      time.Duration
	Acked    []string // ids answered 201 (shares)
}

func (r loadResult) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// request does one request; it returns the status, the time the exchange
// took (request written to response read, preparation excluded) and the id
// to remember when the answer is 201.
type request func(ctx context.Context, worker, i int) (status int, took time.Duration, id string, err error)

// runLoad runs workers in parallel until d has passed.
func runLoad(name string, workers int, d time.Duration, do request) loadResult {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	type part struct {
		lat      []time.Duration
		statuses map[int]int
		errors   int
		acked    []string
	}
	parts := make([]part, workers)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			p := &parts[w]
			p.statuses = map[int]int{}
			p.lat = make([]time.Duration, 0, 1<<14)
			for i := 0; time.Now().Before(deadline) && i < 10_000_000; i++ {
				st, took, id, err := do(ctx, w, i)
				if err != nil {
					p.errors++
					if ctx.Err() != nil {
						return
					}
					continue
				}
				p.lat = append(p.lat, took)
				p.statuses[st]++
				if st == http.StatusCreated && id != "" {
					p.acked = append(p.acked, id)
				}
			}
		}(w)
	}
	wg.Wait()
	r := loadResult{Name: name, Workers: workers, Elapsed: time.Since(start), Statuses: map[int]int{}}
	var lat []time.Duration
	for _, p := range parts {
		lat = append(lat, p.lat...)
		r.Errors += p.errors
		r.Acked = append(r.Acked, p.acked...)
		for k, v := range p.statuses {
			r.Statuses[k] += v
		}
	}
	r.Requests = len(lat)
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		r.P50 = lat[n/2]
		r.P99 = lat[min(n-1, n*99/100)]
		r.Max = lat[n-1]
	}
	return r
}

// fill sends n requests with workers in parallel, unmeasured, and returns
// the ids answered 201; any other answer is an error.
func fill(workers, n int, do request) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var next atomic.Int64
	var mu sync.Mutex
	var acked []string
	var firstErr error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				st, _, id, err := do(ctx, w, i)
				mu.Lock()
				if err == nil && st != http.StatusCreated {
					err = fmt.Errorf("answered %d", st)
				}
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				} else if err == nil {
					acked = append(acked, id)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acked, firstErr
}

func newLoadClient(workers int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        workers * 2,
			MaxIdleConnsPerHost: workers * 2,
			MaxConnsPerHost:     workers * 2,
			DisableCompression:  true,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// exchange sends req and reads the whole answer.
func exchange(client *http.Client, req *http.Request) (int, time.Duration, error) {
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, time.Since(t0), err
}

// shareRequests sends signed shares from sender to the agent at base.
func shareRequests(client *http.Client, sender *ocmtest.Server, base, to, run string, signing string) request {
	from := sender.Address()
	return func(ctx context.Context, w, i int) (int, time.Duration, string, error) {
		id := fmt.Sprintf("%s-%d-%d", run, w, i)
		body := fmt.Appendf(nil, `{"shareWith":%q,"name":"doc-%s.txt","providerId":%q,"owner":%q,"sender":%q,`+
			`"ownerDisplayName":"Alice","senderDisplayName":"Alice","shareType":"user","resourceType":"file",`+
			`"protocol":{"name":"multi","webdav":{"uri":%q,"sharedSecret":"s3cr3t-%s","permissions":["read"]}}}`,
			to, id, id, from, from, id, id)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/ocm/shares", bytes.NewReader(body))
		if err != nil {
			return 0, 0, "", err
		}
		req.Header.Set("Content-Type", "application/json")
		if err := sender.SignRequest(req, body, signing); err != nil {
			return 0, 0, "", err
		}
		st, took, err := exchange(client, req)
		return st, took, id, err
	}
}

// getRequests fetches url.
func getRequests(client *http.Client, url string) request {
	return func(ctx context.Context, w, i int) (int, time.Duration, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, 0, "", err
		}
		st, took, err := exchange(client, req)
		return st, took, "", err
	}
}
