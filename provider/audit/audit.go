// Package audit owns the audit event schema (Event, the event names and
// their constructors) and its writers: a JSON-lines file or stream, and a
// fan-out to several sinks (the audit log and the metrics both receive
// every event, from one emission point in the handlers).
//
// An event never carries a password, secret, code, token, assertion or
// request body: only names, identifiers, addresses and outcomes. The
// constructors take no such argument, so a handler cannot put one in.
//
// It is a leaf beside storage: it must not import provider, storage or
// fosite (nor prometheus: provider/metrics imports it, not the reverse).
package audit

import (
	"context"
	"time"
	"unicode/utf8"
)

// Event is one line of the audit log.
type Event struct {
	Time time.Time `json:"time"`
	// Name is what happened: one of the constants below.
	Name string `json:"event"`
	// Outcome is success, failure or denied.
	Outcome string `json:"outcome"`
	// Reason says why a failure failed (unknown_user, bad_password,
	// throttled, an OAuth error code...).
	Reason string `json:"reason,omitempty"`

	ClientID string `json:"client_id,omitempty"`
	// Username is as typed on a failed sign-in; Subject is the user's
	// stable ID once known.
	Username  string `json:"username,omitempty"`
	Subject   string `json:"sub,omitempty"`
	GrantType string `json:"grant_type,omitempty"`
	Scope     string `json:"scope,omitempty"`
	// Method is the factor a sign-in step used or failed with (totp,
	// recovery_code, passkey): never the code or credential itself.
	Method string `json:"method,omitempty"`

	// ClientAddr is the HTTP client's address (after trusted_proxies);
	// RequestID is the X-Request-Id the server gave the request.
	ClientAddr string `json:"client_addr,omitempty"`
	RequestID  string `json:"request_id,omitempty"`

	// Op and Object are an admin change: the operation (user_add...)
	// and the object's identifier (username, client ID, entry ID).
	Op     string `json:"op,omitempty"`
	Object string `json:"object,omitempty"`
	// Actor is who made an admin change or reload.
	Actor *Actor `json:"actor,omitempty"`
}

// Actor is the operator behind an admin change: the local user running the
// CLI, or the peer of the admin socket (its uid from SO_PEERCRED).
type Actor struct {
	// Via is "socket" (through a running server's admin socket), "cli"
	// (the CLI on the database itself) or "signal".
	Via  string `json:"via"`
	UID  int    `json:"uid"`
	User string `json:"user,omitempty"`
	PID  int    `json:"pid,omitempty"`
}

// Outcomes.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// Event names. The list is closed: metrics label by it.
const (
	SignIn           = "signin"            // success or failure, with reason
	Consent          = "consent"           // success (given) or denied
	TokenIssued      = "token_issued"      // by grant type and client
	TokenRefused     = "token_refused"     // a failed token request, reason = OAuth error
	TokenRevoked     = "token_revoked"     // by a client (/revoke) or a person (account page)
	RefreshReuse     = "refresh_reuse"     // a rotated refresh token presented again: family revoked
	CodeReplay       = "code_replay"       // an authorization code used twice: its tokens revoked
	RateLimited      = "rate_limited"      // a client over its token endpoint rate limit
	ClientRegistered = "client_registered" // dynamic registration (RFC 7591)
	ClientUpdated    = "client_updated"    // RFC 7592 PUT
	ClientDeleted    = "client_deleted"    // RFC 7592 DELETE
	Logout           = "logout"
	PasswordChanged  = "password_changed" // on the account page
	AdminChange      = "admin_change"     // CLI or admin socket, with op, object and actor
	ConfigReloaded   = "config_reloaded"  // success or failure (reason)
	KeyPublished     = "key_published"    // keys.rotate_every published the next signing key (object: its kid)
	// A person's second factors, on the account page or during a
	// sign-in (object: the method, totp or passkey).
	MFAEnrolled            = "mfa_enrolled"
	MFARemoved             = "mfa_removed"
	RecoveryCodesGenerated = "recovery_codes_generated"
)

// Names are every event name, for metrics to pre-declare.
var Names = []string{SignIn, Consent, TokenIssued, TokenRefused, TokenRevoked, RefreshReuse, CodeReplay,
	RateLimited, ClientRegistered, ClientUpdated, ClientDeleted, Logout, PasswordChanged, AdminChange, ConfigReloaded, KeyPublished,
	MFAEnrolled, MFARemoved, RecoveryCodesGenerated}

// Sign-in failure reasons.
const (
	ReasonUnknownUser = "unknown_user"
	ReasonBadPassword = "bad_password"
	ReasonThrottled   = "throttled"
	ReasonError       = "error" // the check could not be made (storage)
)

// Admin operations (Event.Op of AdminChange).
const (
	OpUserAdd     = "user_add"
	OpUserDelete  = "user_delete"
	OpUserPasswd  = "user_set_password"
	OpClientAdd   = "client_add"
	OpClientDel   = "client_delete"
	OpTrustAdd    = "trust_add"
	OpTrustDelete = "trust_delete"
	// An operator enrolling or removing a person's authenticator app, or
	// removing every second factor and recovery code (the object is the
	// username; never a secret).
	OpUserTOTPAdd    = "user_totp_add"
	OpUserTOTPRemove = "user_totp_remove"
	OpUserMFAReset   = "user_mfa_reset"
	// OpBackup is a copy of the whole database taken through the admin
	// socket: no change, but everything a thief would want.
	OpBackup = "backup"
)

// Sink receives events. Implementations must be safe for concurrent use
// and must not block for long: they run on the request's goroutine.
type Sink interface {
	Record(ctx context.Context, e Event)
}

// Discard is a Sink that drops every event.
var Discard Sink = discard{}

type discard struct{}

func (discard) Record(context.Context, Event) {}

// Fanout sends every event to each non-nil sink in turn; none is Discard.
func Fanout(sinks ...Sink) Sink {
	var out fanout
	for _, s := range sinks {
		if s != nil && s != Discard {
			out = append(out, s)
		}
	}
	switch len(out) {
	case 0:
		return Discard
	case 1:
		return out[0]
	}
	return out
}

type fanout []Sink

func (f fanout) Record(ctx context.Context, e Event) {
	for _, s := range f {
		s.Record(ctx, e)
	}
}

// OrDiscard is s, or Discard when s is nil.
func OrDiscard(s Sink) Sink {
	if s == nil {
		return Discard
	}
	return s
}

type actorKey struct{}

// WithActor marks ctx as the work of a, for the admin changes made in it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom is the actor WithActor recorded, if any.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// MaxFieldBytes bounds each text field of a written event. Usernames and
// client IDs come from unauthenticated requests (up to a whole form body):
// unbounded, every refused request could write kilobytes to the disk the
// database lives on.
const MaxFieldBytes = 256

// bounded is e with every field cut to MaxFieldBytes, at a character
// boundary, marked with "…" where it was cut.
func (e Event) bounded() Event {
	for _, f := range []*string{&e.Reason, &e.ClientID, &e.Username, &e.Subject, &e.GrantType, &e.Scope, &e.ClientAddr, &e.RequestID, &e.Op, &e.Object} {
		*f = truncate(*f, MaxFieldBytes)
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
