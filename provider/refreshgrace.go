package provider

// The refresh grace (Config.RefreshReuseGrace, tokens.refresh_reuse_grace).
//
// A refresh token is rotated: each use retires it and issues a new pair,
// and a retired token presented again revokes its whole family (RFC 9700
// §4.14.2). A client whose connection drops after the provider committed a
// rotation but before the answer arrived is left with a retired token and
// loses its grant at its next try. Within the grace after a rotation, the
// same client presenting the retired token again is given the very answer
// it missed (the same access token, refresh token and ID token; expires_in
// counted down) instead, as long as that new refresh token is still
// unused and its family alive. Anything else is reuse, as without a grace:
// another client, a later try, a try after the new token was used or the
// family revoked.
//
// The answer is kept, sealed, on the retired token's record, written in
// the rotation's own transaction: a refresh stays one commit. The seal is
// AES-256-GCM under a key derived (HKDF-SHA256) from the provider secret
// and the retired token itself, which is never stored (its record is kept
// under the token's signature): the rotation has it from the request, and
// so has a replay, but whoever holds the database and the provider secret
// (the state directory, a backup with keys) cannot open an answer without
// the retired token. The sealed data is bound to the client, the token's
// signature and the end of the grace. Because the ID token is signed
// after fosite's refresh handler would commit, that commit is deferred
// (fositeStore.Commit) to handleToken, which seals the answer into the
// transaction and commits it (commitRotation): with a grace the write lock
// is held while the ID token is signed, so a refresh costs other writers
// that much more. The sealed answer, about one and a half kilobytes, is
// not kept past the grace: the store indexes it at the end of the grace,
// and the janitor's first run after that strips it from the record (the
// record itself stays until the retired token would have expired, for
// reuse detection); a replay in between finds it expired and does not
// open it.
//
// Two requests racing with one token: the loser finds it retired inside
// its transaction (RotateRefreshToken), with the winner's sealed answer
// beside it, and is given that answer too, once the winner's commit is on
// disk (replayAfterRace). Without a grace the loser is told to retry, and
// the retry revokes the family, as before.

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"
)

// MaxRefreshReuseGrace bounds Config.RefreshReuseGrace: long enough for a
// client to retry after a dropped connection, short enough that a stolen
// retired token is not a second way in for long.
const MaxRefreshReuseGrace = 5 * time.Minute

// refreshReplays seals and opens the answers kept for the grace.
type refreshReplays struct {
	// key is derived from the provider secret; each answer's key is
	// derived from it and the retired token (aead).
	key   []byte
	grace time.Duration
}

func newRefreshReplays(providerSecret []byte, grace time.Duration) (*refreshReplays, error) {
	if grace <= 0 {
		return nil, nil
	}
	if grace > MaxRefreshReuseGrace {
		return nil, fmt.Errorf("provider: refresh reuse grace %s is longer than %s", grace, MaxRefreshReuseGrace)
	}
	return &refreshReplays{key: secret.DeriveKey(providerSecret, "refresh-replay"), grace: grace}, nil
}

// aead is the cipher of the answer kept for the retired refresh token
// oldToken (the token as presented, not its signature).
func (r *refreshReplays) aead(oldToken string) (cipher.AEAD, error) {
	if oldToken == "" {
		return nil, errReplaySealed
	}
	k, err := hkdf.Key(sha256.New, r.key, []byte(oldToken), "smallsso refresh-replay answer v2", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

const replayVersion = 2

// replayPlain is a sealed answer's plaintext: the token response's fields
// as JSON values, and when it was given.
type replayPlain struct {
	Version  int                        `cbor:"0,keyasint"`
	IssuedAt int64                      `cbor:"1,keyasint"` // unix nanoseconds
	Fields   map[string]json.RawMessage `cbor:"2,keyasint"`
}

func replayAD(clientID, sig string, until time.Time) []byte {
	return []byte("refresh-replay\x00" + clientID + "\x00" + sig + "\x00" + strconv.FormatInt(until.UnixNano(), 10))
}

// seal seals resp, the answer of the rotation that retired oldToken (whose
// signature is sig).
func (r *refreshReplays) seal(oldToken, clientID, sig string, until, issued time.Time, resp fosite.AccessResponder) ([]byte, error) {
	aead, err := r.aead(oldToken)
	if err != nil {
		return nil, fmt.Errorf("seal refresh answer: %w", err)
	}
	fields := make(map[string]json.RawMessage)
	for k, v := range resp.ToMap() {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("seal refresh answer: %w", err)
		}
		fields[k] = raw
	}
	plain, err := sessionEnc.Marshal(replayPlain{Version: replayVersion, IssuedAt: issued.UnixNano(), Fields: fields})
	if err != nil {
		return nil, fmt.Errorf("seal refresh answer: %w", err)
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plain, replayAD(clientID, sig, until)), nil
}

var errReplaySealed = errors.New("the kept refresh answer does not open")

// open opens the answer kept on rec, the record of the retired token
// oldToken as presented again; it does not open with any other token.
func (r *refreshReplays) open(oldToken string, rec storage.TokenRequest) (replayPlain, error) {
	var p replayPlain
	aead, err := r.aead(oldToken)
	if err != nil || len(rec.Replay) < aead.NonceSize() {
		return p, errReplaySealed
	}
	nonce, box := rec.Replay[:aead.NonceSize()], rec.Replay[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, box, replayAD(rec.ClientID, rec.Signature, rec.ReplayUntil))
	if err != nil {
		return p, errReplaySealed
	}
	if err := sessionDec.Unmarshal(plain, &p); err != nil || p.Version != replayVersion {
		return p, errReplaySealed
	}
	return p, nil
}

// refreshToken is the new refresh token of a kept answer.
func (p replayPlain) refreshToken() string {
	var s string
	_ = json.Unmarshal(p.Fields["refresh_token"], &s)
	return s
}

// scopes are the scopes of a kept answer.
func (p replayPlain) scopes() []string {
	var s string
	_ = json.Unmarshal(p.Fields["scope"], &s)
	return strings.Fields(s)
}

// response rebuilds the answer as of now: the same tokens, expires_in
// counted down by the time since it was first given.
func (p replayPlain) response(now time.Time) *fosite.AccessResponse {
	resp := fosite.NewAccessResponse()
	for k, v := range p.Fields {
		switch k {
		case "access_token":
			var s string
			_ = json.Unmarshal(v, &s)
			resp.SetAccessToken(s)
		case "token_type":
			var s string
			_ = json.Unmarshal(v, &s)
			resp.SetTokenType(s)
		case "expires_in":
			var n int64
			if json.Unmarshal(v, &n) == nil {
				elapsed := int64(now.Sub(time.Unix(0, p.IssuedAt)) / time.Second)
				resp.SetExtra(k, max(n-max(elapsed, 0), 0))
			}
		default:
			resp.SetExtra(k, v)
		}
	}
	return resp
}

// graceReplay is an answer found for a retired token presented again.
type graceReplay struct {
	rec   storage.TokenRequest // the retired token's record
	plain replayPlain
	// raced: found inside a transaction, where the rotation may not be on
	// disk yet.
	raced bool
}

// findReplay returns the kept answer for the retired refresh token token
// (signature sig) presented by clientID, or nil when its reuse is not
// forgiven: no answer, past the grace, another client, or the new refresh
// token used or revoked since. ctx may carry a transaction.
func (s *fositeStore) findReplay(ctx context.Context, token, sig, clientID string, signature func(string) string) (*graceReplay, error) {
	rec, err := s.store.GetToken(ctx, storage.KindRefreshToken, sig)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case rec.Active || len(rec.Replay) == 0 || !s.now().Before(rec.ReplayUntil) || rec.ClientID != clientID:
		return nil, nil
	}
	plain, err := s.replays.open(token, rec)
	if err != nil {
		// Another provider secret or token, or damage: not forgiven.
		return nil, nil
	}
	next, err := s.store.GetToken(ctx, storage.KindRefreshToken, signature(plain.refreshToken()))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil // the family was revoked
	case err != nil:
		return nil, err
	case !next.Active || next.RequestID != rec.RequestID:
		return nil, nil // the new token was used: this is reuse
	}
	return &graceReplay{rec: rec, plain: plain}, nil
}

// commitRotation ends a refresh's deferred transaction: the answer is
// sealed onto the retired token's record, and the transaction committed.
func (s *fositeStore) commitRotation(g *grantState, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	now := s.now()
	// The seal binds the end of the grace; a backend keeps times to the
	// microsecond (PostgreSQL), so it is cut to that before it is bound.
	until := now.Add(s.replays.grace).Truncate(time.Microsecond)
	blob, err := s.replays.seal(ar.GetRequestForm().Get("refresh_token"), ar.GetClient().GetID(), g.rotated, until, now, resp)
	if err != nil {
		return err
	}
	if err := s.store.SetTokenReplay(g.pending, storage.KindRefreshToken, g.rotated, blob, until); err != nil {
		return err
	}
	return s.store.CommitTx(g.pending)
}

// replayAfterRace makes sure the rotation whose answer a racing request
// found is on disk before that answer leaves: it writes the answer again,
// as a writer of its own, which commits with or after the rotation.
func (s *fositeStore) replayAfterRace(ctx context.Context, r *graceReplay) error {
	if !r.raced {
		return nil
	}
	return s.store.SetTokenReplay(ctx, storage.KindRefreshToken, r.rec.Signature, r.rec.Replay, r.rec.ReplayUntil)
}

// graceRefreshHandler is fosite's refresh handler that, with a grace,
// first looks for a kept answer to a retired token (see above). The
// client is authenticated by then.
type graceRefreshHandler struct {
	*oauth2.RefreshTokenGrantHandler
	store *fositeStore
}

// refreshGraceFactory composes fosite's refresh handler inside a
// graceRefreshHandler.
func refreshGraceFactory(config fosite.Configurator, store any, strategy any) any {
	inner := compose.OAuth2RefreshTokenGrantFactory(config, store, strategy).(*oauth2.RefreshTokenGrantHandler)
	fs, _ := store.(*fositeStore)
	return &graceRefreshHandler{RefreshTokenGrantHandler: inner, store: fs}
}

func (h *graceRefreshHandler) signature(ctx context.Context) func(string) string {
	return func(token string) string { return h.RefreshTokenStrategy.RefreshTokenSignature(ctx, token) }
}

func (h *graceRefreshHandler) HandleTokenEndpointRequest(ctx context.Context, request fosite.AccessRequester) error {
	if h.store == nil || h.store.replays == nil || !h.CanHandleTokenEndpointRequest(ctx, request) ||
		!request.GetClient().GetGrantTypes().Has("refresh_token") {
		return h.RefreshTokenGrantHandler.HandleTokenEndpointRequest(ctx, request)
	}
	token := request.GetRequestForm().Get("refresh_token")
	sig := h.RefreshTokenStrategy.RefreshTokenSignature(ctx, token)
	r, err := h.store.findReplay(ctx, token, sig, request.GetClient().GetID(), h.signature(ctx))
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if r == nil {
		err := h.RefreshTokenGrantHandler.HandleTokenEndpointRequest(context.WithValue(ctx, graceReadKey{}, true), request)
		if errors.Is(err, errRotatedMeanwhile) {
			return h.rotatedMeanwhile(ctx, request, token, sig)
		}
		return err
	}
	// Nothing else is done for the request: handleToken answers with r.
	grantStateOf(ctx).replay = r
	return nil
}

// errRotatedMeanwhile is GetRefreshTokenSession's answer for a retired
// token with a kept answer, which fosite passes on without acting on it.
var errRotatedMeanwhile = errors.New("refresh token rotated by a concurrent request")

// graceReadKey marks the context of the grace handler's call of fosite's
// refresh handler: only there is a retired token with a kept answer
// reported as errRotatedMeanwhile. Everywhere else (revocation, a
// second look after rotatedMeanwhile) it is fosite.ErrInactiveToken.
type graceReadKey struct{}

// rotatedMeanwhile is the handler's path when the token was active when
// findReplay read it and retired when fosite did: a request racing with
// this one rotated it in between. That rotation's answer is this one's if
// findReplay now grants it (same client, new token unused); otherwise it
// is reuse, and fosite's handler runs again to revoke the family.
func (h *graceRefreshHandler) rotatedMeanwhile(ctx context.Context, request fosite.AccessRequester, token, sig string) error {
	r, err := h.store.findReplay(ctx, token, sig, request.GetClient().GetID(), h.signature(ctx))
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if r == nil {
		return h.RefreshTokenGrantHandler.HandleTokenEndpointRequest(ctx, request)
	}
	grantStateOf(ctx).replay = r
	return nil
}

// PopulateTokenEndpointResponse hands the handler's signature function to
// RotateRefreshToken, which needs it when it loses a race.
func (h *graceRefreshHandler) PopulateTokenEndpointResponse(ctx context.Context, request fosite.AccessRequester, responder fosite.AccessResponder) error {
	if h.store != nil && h.store.replays != nil {
		grantStateOf(ctx).signature = h.signature(ctx)
	}
	return h.RefreshTokenGrantHandler.PopulateTokenEndpointResponse(ctx, request, responder)
}

// lostRotation is RotateRefreshToken's path when its token was retired by
// a racing request: with a grace, the winner's answer is found in the
// transaction and kept for handleToken (the request still fails here, so
// fosite rolls back and writes nothing).
func (s *fositeStore) lostRotation(ctx context.Context, sig string) error {
	g := grantStateOf(ctx)
	ar, _ := ctx.Value(fosite.AccessRequestContextKey).(fosite.AccessRequester)
	if s.replays == nil || g.signature == nil || ar == nil {
		return nil
	}
	r, err := s.findReplay(ctx, ar.GetRequestForm().Get("refresh_token"), sig, ar.GetClient().GetID(), g.signature)
	if err != nil || r == nil {
		return err
	}
	r.raced = true
	g.replay = r
	return nil
}
