package control

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Backend is what the daemon offers the API: the agent implements it.
type Backend interface {
	Status(ctx context.Context) Status
	Shares(ctx context.Context, all bool) ([]Share, error)
	Share(ctx context.Context, id string) (Share, error)
	AcceptShare(ctx context.Context, id string) (Share, error)
	DeclineShare(ctx context.Context, id string) (Share, error)
	RemoveShare(ctx context.Context, id string) (Share, error)
	Invites(ctx context.Context) ([]Invite, error)
	CreateInvite(ctx context.Context, req InviteRequest) (CreatedInvite, error)
	RevokeInvite(ctx context.Context, id string) (Invite, error)
	AcceptInvite(ctx context.Context, req AcceptInviteRequest) (Contact, error)
	Contacts(ctx context.Context) ([]Contact, error)
	RemoveContact(ctx context.Context, id string) (Contact, error)
	Subscribe(after uint64) (past []Event, next <-chan Event, cancel func())
}

// Route is one operation of the API.
type Route struct {
	Method string
	Path   string // a net/http pattern path: {id} is a path parameter
	Query  string // query parameters, for the reference
	In     any    // the JSON request body's type; nil for none
	Out    any    // the JSON answer's type (Event: a stream of them)
	Doc    string
	call   func(Backend, *http.Request) (any, error) // nil for the event stream
}

// Routes is the whole local API. docs/local-api.md describes it; a test
// holds the two together.
func Routes() []Route {
	return []Route{
		{"GET", "/v1/status", "", nil, Status{}, "the daemon's state at a glance",
			func(b Backend, r *http.Request) (any, error) { return b.Status(r.Context()), nil }},
		{"GET", "/v1/events", "after=SEQ", nil, Event{}, "the change feed, as server-sent events; after (or Last-Event-ID) resumes it",
			nil},

		{"GET", "/v1/shares", "all=true", nil, []Share{}, "received shares: pending, accepted and failed ones; all adds declined and removed ones",
			func(b Backend, r *http.Request) (any, error) {
				all, _ := strconv.ParseBool(r.URL.Query().Get("all"))
				return b.Shares(r.Context(), all)
			}},
		{"GET", "/v1/shares/{id}", "", nil, Share{}, "one share",
			func(b Backend, r *http.Request) (any, error) { return b.Share(r.Context(), r.PathValue("id")) }},
		{"POST", "/v1/shares/{id}/accept", "", nil, Share{}, "accept a pending share: it appears in the mount and the sender is told",
			func(b Backend, r *http.Request) (any, error) { return b.AcceptShare(r.Context(), r.PathValue("id")) }},
		{"POST", "/v1/shares/{id}/decline", "", nil, Share{}, "decline a pending share: its secret is deleted and the sender is told",
			func(b Backend, r *http.Request) (any, error) { return b.DeclineShare(r.Context(), r.PathValue("id")) }},
		{"POST", "/v1/shares/{id}/remove", "", nil, Share{}, "remove an accepted share: it leaves the mount and its secret is deleted",
			func(b Backend, r *http.Request) (any, error) { return b.RemoveShare(r.Context(), r.PathValue("id")) }},
		{"POST", "/v1/shares/{id}/retry", "", nil, Share{}, "try a revoked or failed share again: it returns to the mount if its server serves it (the sender is not told)",
			func(b Backend, r *http.Request) (any, error) { return b.AcceptShare(r.Context(), r.PathValue("id")) }},

		{"POST", "/v1/shares/{id}/pin", "", PinRequest{}, PinJob{}, "keep an accepted share, or a folder or file in it, on this device: the answer is the job that downloads it",
			withCache(func(c CacheBackend, r *http.Request) (any, error) {
				var req PinRequest
				if err := readJSON(r, &req); err != nil {
					return nil, err
				}
				return c.Pin(r.Context(), r.PathValue("id"), req)
			})},
		{"GET", "/v1/pin-jobs/{id}", "", nil, PinJob{}, "the progress of a pin's download; jobs are kept for an hour after they end",
			withCache(func(c CacheBackend, r *http.Request) (any, error) { return c.PinJob(r.Context(), r.PathValue("id")) })},
		{"POST", "/v1/shares/{id}/unpin", "", PinRequest{}, Pin{}, "stop keeping a share (or the folder or file) on this device: its content becomes ordinary cache",
			withCache(func(c CacheBackend, r *http.Request) (any, error) {
				var req PinRequest
				if err := readJSON(r, &req); err != nil {
					return nil, err
				}
				return c.Unpin(r.Context(), r.PathValue("id"), req)
			})},
		{"GET", "/v1/pins", "", nil, []Pin{}, "what is kept on this device, with its size and whether it is up to date",
			withCache(func(c CacheBackend, r *http.Request) (any, error) { return c.Pins(r.Context()) })},
		{"GET", "/v1/cache", "", nil, CacheStatus{}, "what the content cache holds, by share, and its limit",
			withCache(func(c CacheBackend, r *http.Request) (any, error) { return c.CacheStatus(r.Context()) })},
		{"POST", "/v1/cache/clear", "", CacheClearRequest{}, CacheCleared{}, "empty the content cache; pinned content stays unless pinned is true",
			withCache(func(c CacheBackend, r *http.Request) (any, error) {
				var req CacheClearRequest
				if err := readJSON(r, &req); err != nil {
					return nil, err
				}
				return c.ClearCache(r.Context(), req)
			})},

		{"GET", "/v1/invites", "", nil, []Invite{}, "the invites the user made, in every state",
			func(b Backend, r *http.Request) (any, error) { return b.Invites(r.Context()) }},
		{"POST", "/v1/invites", "", InviteRequest{}, CreatedInvite{}, "make an invite; the answer is the only time its code is shown",
			func(b Backend, r *http.Request) (any, error) {
				var req InviteRequest
				if err := readJSON(r, &req); err != nil {
					return nil, err
				}
				return b.CreateInvite(r.Context(), req)
			}},
		{"DELETE", "/v1/invites/{id}", "", nil, Invite{}, "withdraw an invite nobody has accepted yet",
			func(b Backend, r *http.Request) (any, error) { return b.RevokeInvite(r.Context(), r.PathValue("id")) }},
		{"POST", "/v1/invites/accept", "", AcceptInviteRequest{}, Contact{}, "accept someone's invite: their server is told and they become a contact",
			func(b Backend, r *http.Request) (any, error) {
				var req AcceptInviteRequest
				if err := readJSON(r, &req); err != nil {
					return nil, err
				}
				return b.AcceptInvite(r.Context(), req)
			}},

		{"GET", "/v1/contacts", "", nil, []Contact{}, "the address book",
			func(b Backend, r *http.Request) (any, error) { return b.Contacts(r.Context()) }},
		{"DELETE", "/v1/contacts/{id}", "", nil, Contact{}, "remove a contact (they are not told); the answer is the removed contact",
			func(b Backend, r *http.Request) (any, error) { return b.RemoveContact(r.Context(), r.PathValue("id")) }},
	}
}

// withCache is a route of the CacheBackend.
func withCache(f func(CacheBackend, *http.Request) (any, error)) func(Backend, *http.Request) (any, error) {
	return func(b Backend, r *http.Request) (any, error) {
		c, err := cacheOf(b)
		if err != nil {
			return nil, err
		}
		return f(c, r)
	}
}

// Pattern is the route's net/http pattern.
func (rt Route) Pattern() string { return rt.Method + " " + rt.Path }

// maxRequestBody caps a request body; the largest, an invite, is far
// smaller.
const maxRequestBody = 64 << 10

// readJSON decodes the request body into v; an empty body leaves v as it is.
func readJSON(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil || len(data) > maxRequestBody {
		return invalid("the request body cannot be read or is too large")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return invalid("the request body is not the expected JSON")
	}
	return nil
}

// invalid is a bad request, said in words for the person.
type invalid string

func (e invalid) Error() string   { return string(e) }
func (e invalid) Is(t error) bool { return t == ErrInvalid }
