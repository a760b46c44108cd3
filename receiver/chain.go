package receiver

import (
	"context"
	"log/slog"
	"net/http"
)

// cachedPaths serve bytes prepared in advance (the discovery document and
// the JWKS). Every peer and crawler fetches them; they are not limited per
// client and their request lines are logged at debug level only.
var cachedPaths = map[string]bool{
	"/.well-known/ocm": true, "/ocm-provider": true, "/ocm-provider/": true, "/ocm/jwks": true,
}

// Public is the handler of the public endpoint: lim in front (it counts
// and logs its refusals itself), then one log line per request, then api.
// Requests for the cached documents log at debug level, so that fetching
// them stays cheap and cannot fill the log.
func Public(api http.Handler, lim *Limiter, log *slog.Logger) http.Handler {
	logged := LogRequests(api, log)
	quiet := LogRequests(api, slog.New(debugOnly{log.Handler()}))
	return lim.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cachedPaths[r.URL.Path] && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			quiet.ServeHTTP(w, r)
			return
		}
		logged.ServeHTTP(w, r)
	}))
}

// debugOnly turns every record into a debug record.
type debugOnly struct{ h slog.Handler }

func (d debugOnly) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d debugOnly) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return d.h.Handle(ctx, r)
}

func (d debugOnly) WithAttrs(as []slog.Attr) slog.Handler { return debugOnly{d.h.WithAttrs(as)} }
func (d debugOnly) WithGroup(name string) slog.Handler    { return debugOnly{d.h.WithGroup(name)} }
