package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// memBackend keeps pins too (CacheBackend).

func (b *memBackend) Pin(_ context.Context, share string, req PinRequest) (PinJob, error) {
	b.called("Pin(%s,%s)", share, req.Path)
	if share != "s1" {
		return PinJob{}, fmt.Errorf("no share %q: %w", share, ErrNotFound)
	}
	return PinJob{ID: "j1", Share: share, Path: req.Path, State: PinRunning}, nil
}

func (b *memBackend) PinJob(_ context.Context, id string) (PinJob, error) {
	b.called("PinJob(%s)", id)
	if id != "j1" {
		return PinJob{}, fmt.Errorf("no job %q: %w", id, ErrNotFound)
	}
	return PinJob{ID: id, Share: "s1", State: PinDone, Listed: true, Files: 2, FilesDone: 2, Bytes: 10, BytesDone: 10}, nil
}

func (b *memBackend) Unpin(_ context.Context, share string, req PinRequest) (Pin, error) {
	b.called("Unpin(%s,%s)", share, req.Path)
	return Pin{Share: share, Path: req.Path, Bytes: 10}, nil
}

func (b *memBackend) Pins(context.Context) ([]Pin, error) {
	b.called("Pins")
	return []Pin{{Share: "s1", Name: "Project", Files: 2, Complete: 2, Bytes: 10, UpToDate: true}}, nil
}

func (b *memBackend) CacheStatus(context.Context) (CacheStatus, error) {
	b.called("CacheStatus")
	return CacheStatus{Dir: "/cache", Files: 2, Bytes: 10, Limit: 100}, nil
}

func (b *memBackend) ClearCache(_ context.Context, req CacheClearRequest) (CacheCleared, error) {
	b.called("ClearCache(%v)", req.Pinned)
	return CacheCleared{Freed: 7}, nil
}

// pinCases are TestEveryRouteThroughTheSocket's cases for the pin and
// cache routes.
func pinCases(c *Client, want func(*testing.T, error, string)) map[string]func(t *testing.T) {
	ctx := context.Background()
	return map[string]func(t *testing.T){
		"POST /v1/shares/{id}/pin": func(t *testing.T) {
			j, err := c.Pin(ctx, "s1", "Docs/2026")
			want(t, err, "Pin(s1,Docs/2026)")
			if j.ID != "j1" || j.State != PinRunning {
				t.Fatalf("%+v", j)
			}
			if _, err := c.Pin(ctx, "nope", ""); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown share: %v", err)
			}
		},
		"GET /v1/pin-jobs/{id}": func(t *testing.T) {
			j, err := c.PinJob(ctx, "j1")
			want(t, err, "PinJob(j1)")
			if j.State != PinDone || j.FilesDone != 2 {
				t.Fatalf("%+v", j)
			}
			if _, err := c.PinJob(ctx, "j9"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown job: %v", err)
			}
		},
		"POST /v1/shares/{id}/unpin": func(t *testing.T) {
			p, err := c.Unpin(ctx, "s1", "")
			want(t, err, "Unpin(s1,)")
			if p.Share != "s1" || p.Bytes != 10 {
				t.Fatalf("%+v", p)
			}
		},
		"GET /v1/pins": func(t *testing.T) {
			l, err := c.Pins(ctx)
			want(t, err, "Pins")
			if len(l) != 1 || !l[0].UpToDate {
				t.Fatalf("%+v", l)
			}
		},
		"GET /v1/cache": func(t *testing.T) {
			st, err := c.CacheStatus(ctx)
			want(t, err, "CacheStatus")
			if st.Dir != "/cache" || st.Limit != 100 {
				t.Fatalf("%+v", st)
			}
		},
		"POST /v1/cache/clear": func(t *testing.T) {
			r, err := c.ClearCache(ctx, true)
			want(t, err, "ClearCache(true)")
			if r.Freed != 7 {
				t.Fatalf("%+v", r)
			}
		},
	}
}

// backendOnly hides memBackend's CacheBackend methods: a daemon without
// a mount.
type backendOnly struct{ Backend }

// TestPinRoutesWithoutCache: a daemon without a mount answers the pin
// and cache routes with 503 and says why.
func TestPinRoutesWithoutCache(t *testing.T) {
	c := serve(t, backendOnly{newMemBackend()})
	_, err := c.Pin(context.Background(), "s1", "")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || !strings.Contains(ae.Message, "not mounted") {
		t.Fatalf("pin without a mount: %v", err)
	}
	if _, err := c.CacheStatus(context.Background()); !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("cache status without a mount: %v", err)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
