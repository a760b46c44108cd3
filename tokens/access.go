package tokens

import (
	"context"
	"fmt"
	"log/slog"
)

// Access describes how one accepted share may be accessed; the agent builds
// it from the stored share, the sender's discovery and the secret store.
type Access struct {
	ShareID string
	// Peer is the sending server, domain[:port].
	Peer string
	// Secret is protocol.webdav.sharedSecret (or options.sharedSecret of a
	// legacy share); when LegacyCode is set it is the top-level code.
	Secret string
	// MustExchange: protocol.webdav.requirements has must-exchange-token.
	MustExchange bool
	// PeerExchanges: the sender's discovery advertises the exchange-token
	// capability (and TokenEndpoint is its tokenEndPoint).
	PeerExchanges bool
	// LegacyCode: the share came with a top-level `code` (older drafts),
	// to be exchanged at LegacyTokenEndpoint.
	LegacyCode bool
	// LegacyOptions: a legacy {name: webdav, options: {sharedSecret}}
	// share, read with Bearer or Basic `<secret>:`.
	LegacyOptions bool
	// TokenEndpoint is the sender's tokenEndPoint (1.4 contract).
	TokenEndpoint string
	// LegacyTokenEndpoint is `<endPoint>/token` of the sender.
	LegacyTokenEndpoint string
	// ClientID is our host[:port], as the share was addressed to us.
	ClientID string
}

// String describes the access without its secret.
func (a Access) String() string {
	return fmt.Sprintf("share %s from %s (%s)", a.ShareID, a.Peer, Decide(a))
}

// LogValue logs the access without its secret.
func (a Access) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("share", a.ShareID),
		slog.String("peer", a.Peer),
		slog.String("mode", Decide(a).String()),
		slog.Bool("secret_set", a.Secret != ""),
	)
}

// ShareAccessSource looks up how a share is accessed (the agent
// implements it over its store, discovery cache and secret store).
type ShareAccessSource interface {
	ShareAccess(ctx context.Context, shareID string) (Access, error)
}

// Mode is what the decision table says to do with a share.
type Mode int

const (
	// ModeSecret: send the shared secret as a bearer token.
	ModeSecret Mode = iota
	// ModeMustExchange: exchange the secret at TokenEndpoint and use only
	// the bearer token; a failed exchange is an error.
	ModeMustExchange
	// ModeMayExchange: the sender offers exchange-token; exchange, and fall
	// back to the shared secret when the exchange fails.
	ModeMayExchange
	// ModeLegacyCode: exchange the top-level code at LegacyTokenEndpoint
	// (JSON contract, with refresh tokens).
	ModeLegacyCode
	// ModeLegacyBasic: legacy options.sharedSecret share: Bearer first,
	// then Basic `<secret>:`, remembering per peer what worked.
	ModeLegacyBasic
)

func (m Mode) String() string {
	switch m {
	case ModeSecret:
		return "shared-secret"
	case ModeMustExchange:
		return "must-exchange-token"
	case ModeMayExchange:
		return "exchange-token-with-fallback"
	case ModeLegacyCode:
		return "legacy-code"
	case ModeLegacyBasic:
		return "legacy-basic"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Decide applies the decision table of the Code Flow section: a
// must-exchange-token requirement wins; then a legacy top-level code; a
// legacy options share is read with its secret (Bearer, then Basic); a
// sender advertising exchange-token with a tokenEndPoint may be asked for
// a token, with the secret as fallback; anything else uses the secret.
func Decide(a Access) Mode {
	switch {
	case a.MustExchange:
		return ModeMustExchange
	case a.LegacyCode:
		return ModeLegacyCode
	case a.LegacyOptions:
		return ModeLegacyBasic
	case a.PeerExchanges && a.TokenEndpoint != "":
		return ModeMayExchange
	}
	return ModeSecret
}
