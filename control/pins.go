package control

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// CacheBackend is the part of a Backend that keeps shares on this device:
// pins, their download jobs and the content cache. A Backend without it
// (no mount) answers those routes with 503.
type CacheBackend interface {
	Pin(ctx context.Context, share string, req PinRequest) (PinJob, error)
	PinJob(ctx context.Context, id string) (PinJob, error)
	Unpin(ctx context.Context, share string, req PinRequest) (Pin, error)
	Pins(ctx context.Context) ([]Pin, error)
	CacheStatus(ctx context.Context) (CacheStatus, error)
	ClearCache(ctx context.Context, req CacheClearRequest) (CacheCleared, error)
}

// ErrNoCache means the daemon has no content cache: it runs without a mount.
var ErrNoCache = errors.New("the shares are not mounted (mount is empty or failed), so nothing is kept on this device")

// cacheOf returns b's CacheBackend, or an error that maps to 503.
func cacheOf(b Backend) (CacheBackend, error) {
	if c, ok := b.(CacheBackend); ok {
		return c, nil
	}
	return nil, unavailable{ErrNoCache}
}

// unavailable is an error answered with 503.
type unavailable struct{ error }

func (unavailable) HTTPStatus() int { return http.StatusServiceUnavailable }
func (u unavailable) Unwrap() error { return u.error }

// Pin job states.
const (
	PinRunning = "running"
	PinDone    = "done"
	PinFailed  = "failed"
)

// PinRequest is the body of the pin and unpin routes: what in the share
// to keep (a folder or a file, "/"-separated); empty for the whole share.
type PinRequest struct {
	Path string `json:"path,omitempty"`
}

// PinJob is the download that a pin starts, and its progress.
type PinJob struct {
	ID    string `json:"id"`
	Share string `json:"share"`
	Path  string `json:"path"`
	State string `json:"state"` // one of the Pin* states
	Error string `json:"error,omitempty"`
	// Listed says the walk of the folders is over: Files and Bytes are
	// the totals (before, what was found so far).
	Listed    bool  `json:"listed"`
	Files     int   `json:"files"`
	FilesDone int   `json:"filesDone"`
	Bytes     int64 `json:"bytes"`
	BytesDone int64 `json:"bytesDone"`
	// Fetched is what was downloaded (files already kept count as done
	// without being fetched again).
	Fetched int64 `json:"fetched"`
	// Rate is the download rate in bytes per second, Remaining the time
	// left at that rate in seconds (0 while unknown).
	Rate      float64   `json:"rate"`
	Remaining float64   `json:"remaining"`
	StartedAt time.Time `json:"startedAt"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
}

// Pin is a share, or a folder or file in it, kept on this device.
type Pin struct {
	Share string    `json:"share"`
	Name  string    `json:"name"` // the share's name
	Path  string    `json:"path"` // "" for the whole share
	Since time.Time `json:"since"`
	// Files and Bytes are what is known under the pin; Complete how many
	// of the files are kept whole.
	Files    int   `json:"files"`
	Complete int   `json:"complete"`
	Bytes    int64 `json:"bytes"`
	// UpToDate: every file is kept, in the version the server had at the
	// last refresh.
	UpToDate   bool      `json:"upToDate"`
	Refreshed  time.Time `json:"refreshed,omitzero"`
	RefreshErr string    `json:"refreshError,omitempty"`
	Offline    bool      `json:"offline,omitempty"`
	RunningJob string    `json:"job,omitempty"`
}

// CacheStatus is what the content cache holds.
type CacheStatus struct {
	Dir         string       `json:"dir"`
	Files       int          `json:"files"`
	Bytes       int64        `json:"bytes"`
	PinnedBytes int64        `json:"pinnedBytes"`
	Limit       int64        `json:"limit"`
	Shares      []CacheShare `json:"shares,omitempty"`
	Pins        []Pin        `json:"pins,omitempty"`
}

// CacheShare is what the cache holds of one share.
type CacheShare struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Files       int    `json:"files"`
	Bytes       int64  `json:"bytes"`
	PinnedBytes int64  `json:"pinnedBytes"`
}

// CacheClearRequest is the body of POST /v1/cache/clear.
type CacheClearRequest struct {
	// Pinned clears the pinned content too (the pins stay and are
	// downloaded again at the next refresh).
	Pinned bool `json:"pinned,omitempty"`
}

// CacheCleared is what a clear freed.
type CacheCleared struct {
	Freed int64 `json:"freed"`
}

// Pin starts keeping a share, or path in it, on this device.
func (c *Client) Pin(ctx context.Context, share, path string) (PinJob, error) {
	var j PinJob
	return j, c.Do(ctx, http.MethodPost, "/v1/shares/"+url.PathEscape(share)+"/pin", PinRequest{Path: path}, &j)
}

// PinJob fetches the progress of a pin's download.
func (c *Client) PinJob(ctx context.Context, id string) (PinJob, error) {
	var j PinJob
	return j, c.Do(ctx, http.MethodGet, "/v1/pin-jobs/"+url.PathEscape(id), nil, &j)
}

// Unpin stops keeping a share, or path in it, on this device.
func (c *Client) Unpin(ctx context.Context, share, path string) (Pin, error) {
	var p Pin
	return p, c.Do(ctx, http.MethodPost, "/v1/shares/"+url.PathEscape(share)+"/unpin", PinRequest{Path: path}, &p)
}

// Pins lists what is kept on this device.
func (c *Client) Pins(ctx context.Context) ([]Pin, error) {
	var l []Pin
	return l, c.Do(ctx, http.MethodGet, "/v1/pins", nil, &l)
}

// CacheStatus tells what the content cache holds.
func (c *Client) CacheStatus(ctx context.Context) (CacheStatus, error) {
	var s CacheStatus
	return s, c.Do(ctx, http.MethodGet, "/v1/cache", nil, &s)
}

// ClearCache empties the content cache (pinned content too with pinned).
func (c *Client) ClearCache(ctx context.Context, pinned bool) (CacheCleared, error) {
	var r CacheCleared
	return r, c.Do(ctx, http.MethodPost, "/v1/cache/clear", CacheClearRequest{Pinned: pinned}, &r)
}

// FormatBytes writes a size for people: 512 B, 3.4 KiB, 1.2 GiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("KMGTPE"[exp]) + "iB"
}
