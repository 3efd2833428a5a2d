package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"

	"github.com/smallsso/provider/storage"
)

// fositeStore adapts storage.Store to the storage interfaces fosite's
// handlers need. It is the only place that knows both worlds: it turns
// storage sentinels into fosite's, and fosite requesters into records.
type fositeStore struct {
	store storage.Store
	now   func() time.Time
	// authenticate checks a resource owner's password (password grant).
	authenticate func(ctx context.Context, username, password string) (subject string, err error)
	// remoteKeys fetches the key sets trusted issuers publish.
	remoteKeys *remoteKeySets
	// accessLifespan is how long an access token lives. An authorization
	// code's record is kept this long past its expiry, so that a reuse is
	// still recognised, and the tokens the code issued revoked, while those
	// can live (RFC 6749 §4.1.2).
	accessLifespan time.Duration
	// cc seals client-credentials tokens instead of storing them (cctoken.go).
	cc *ccTokens
	// replays keeps rotations' answers for the refresh grace; nil without
	// one (refreshgrace.go).
	replays *refreshReplays
}

var (
	_ fosite.Storage                     = (*fositeStore)(nil)
	_ oauth2.CoreStorage                 = (*fositeStore)(nil)
	_ oauth2.TokenRevocationStorage      = (*fositeStore)(nil)
	_ openid.OpenIDConnectRequestStorage = (*fositeStore)(nil)
	_ pkce.PKCERequestStorage            = (*fositeStore)(nil)
	_ fositestorage.Transactional        = (*fositeStore)(nil)

	_ oauth2.ResourceOwnerPasswordCredentialsGrantStorage = (*fositeStore)(nil)
	_ fosite.PARStorage                                   = (*fositeStore)(nil)
)

// CreatePARSession implements fosite.PARStorage. The client's credentials
// were only for the push; they are not kept.
func (s *fositeStore) CreatePARSession(ctx context.Context, requestURI string, r fosite.AuthorizeRequester) error {
	req, ok := r.(*fosite.AuthorizeRequest)
	if !ok {
		return fmt.Errorf("pushed request of type %T", r)
	}
	sanitized := *req
	form := url.Values{}
	for k, v := range req.GetRequestForm() {
		switch k {
		case "client_secret", "client_assertion", "client_assertion_type":
		default:
			form[k] = v
		}
	}
	sanitized.Request.Form = form
	return s.create(ctx, storage.KindPAR, hashedKey(requestURI), &sanitized, fosite.PushedAuthorizeRequestContext, "")
}

// GetPARSession implements fosite.PARStorage: it rebuilds the authorize
// request from its stored form; an expired push is not found.
func (s *fositeStore) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	rec, req, err := s.get(ctx, storage.KindPAR, hashedKey(requestURI), nil)
	if err != nil {
		return nil, err
	}
	if !rec.ExpiresAt.IsZero() && s.now().After(rec.ExpiresAt) {
		return nil, fosite.ErrNotFound
	}
	ar := fosite.NewAuthorizeRequest()
	ar.Request = *req
	ar.ResponseTypes = fosite.RemoveEmpty(strings.Split(req.Form.Get("response_type"), " "))
	ar.State = req.Form.Get("state")
	ar.ResponseMode = fosite.ResponseModeType(req.Form.Get("response_mode"))
	if raw := req.Form.Get("redirect_uri"); raw != "" {
		if ar.RedirectURI, err = url.Parse(raw); err != nil {
			return nil, fmt.Errorf("stored redirect_uri: %w", err)
		}
	}
	return ar, nil
}

// DeletePARSession implements fosite.PARStorage. Unlike other deletes it
// is not idempotent: of two requests racing to use one request_uri, the
// one that finds it gone must fail (RFC 9126 §4: one-time use).
func (s *fositeStore) DeletePARSession(ctx context.Context, requestURI string) error {
	return fositeErr(s.store.DeleteToken(ctx, storage.KindPAR, hashedKey(requestURI)))
}

// Authenticate implements the password grant's user check.
func (s *fositeStore) Authenticate(ctx context.Context, username, password string) (string, error) {
	return s.authenticate(ctx, username, password)
}

// GetClient implements fosite.ClientManager. During secret authentication
// a client registered for client_secret_basic or client_secret_post reports
// the one of the two the request uses (clientAuthenticator.authenticate).
//
// Within one HTTP request the client is loaded once and built once per
// adaptation (clientmemo.go); fosite asks for it several times.
func (s *fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	method := secretMethodFrom(ctx)
	ar, _ := ctx.Value(fosite.AuthorizeRequestContextKey).(*fosite.AuthorizeRequest)
	memo := clientMemoFrom(ctx)
	if cl, ok := memo.lookup(id, method, ar); ok {
		return cl, nil
	}
	c, err := clientRecord(ctx, s.store, id)
	if err != nil {
		return nil, fositeErr(err)
	}
	cl := newClient(c)
	cl.bindAuthorizeRequest(ar)
	if method != "" && isSecretMethod(cl.TokenEndpointAuthMethod) {
		cl.TokenEndpointAuthMethod = method
	}
	memo.remember(id, method, ar, cl)
	return cl, nil
}

// ClientAssertionJWTValid implements fosite.ClientManager: a JTI seen before
// and not yet expired is a replay.
func (s *fositeStore) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	j, err := s.store.GetJTI(ctx, jti)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fositeErr(err)
	}
	if j.ExpiresAt.After(s.now()) {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT implements fosite.ClientManager.
func (s *fositeStore) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	err := s.store.CreateJTI(ctx, storage.JTI{ID: jti, ExpiresAt: exp}, s.now())
	if errors.Is(err, storage.ErrAlreadyExists) {
		return fosite.ErrJTIKnown
	}
	return fositeErr(err)
}

func (s *fositeStore) CreateAuthorizeCodeSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.create(ctx, storage.KindAuthorizeCode, sig, r, fosite.AuthorizeCode, "")
}

// Redeeming a code, and the replay race (RFC 6749 §4.1.2: a code used
// twice revokes the tokens it issued). fosite reads the code twice: when it
// checks the token request (NewAccessRequest) and when it issues the
// tokens (NewAccessResponse, where any storage error becomes a 500).
//
// The code is claimed in the transaction that stores the tokens it buys
// (InvalidateAuthorizeCodeSession), so a code exchange is one commit, and
// only after every check of the token request has passed: a request from
// another client, with another redirect_uri or without the PKCE verifier
// learns nothing and spends nothing, so whoever intercepted a code cannot
// burn it for the person signing in. Because the claim and the tokens
// commit together, a request that finds the code claimed also finds its
// tokens, and revokes them: fosite does so when its check meets a claimed
// code (GetAuthorizeCodeSession), and handleToken when the request passed
// the check but lost the claim to a racing one (grantState).

// GetAuthorizeCodeSession returns the code's request, or
// ErrInvalidatedAuthorizeCode together with it for a code that was
// redeemed already, so fosite revokes what it issued.
func (s *fositeStore) GetAuthorizeCodeSession(ctx context.Context, sig string, sess fosite.Session) (fosite.Requester, error) {
	rec, req, err := s.get(ctx, storage.KindAuthorizeCode, sig, sess)
	if err != nil {
		return nil, err
	}
	if ctx.Value(fosite.AccessResponseContextKey) != nil {
		// Issuing the tokens: the claim is made in their transaction.
		return req, nil
	}
	if !rec.Active {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	return req, nil
}

// grantState carries from fosite's token handlers to handleToken what
// fosite cannot tell it: that the request lost the claim of its code
// (fosite reports any error there as a server error, but the client must
// be told invalid_grant and the winner's tokens revoked), and the
// transaction fosite began, which a panic would leave open (fosite rolls
// back on errors only).
type grantState struct {
	lost      bool
	requestID string // of the lost code, "" if it was deleted
	tx        context.Context
	// With a refresh grace (refreshgrace.go): rotated is the refresh token
	// this request retired and pending its transaction, whose commit
	// handleToken makes; replay is the kept answer to give instead of
	// running the grant; signature is the refresh token strategy's.
	rotated   string
	pending   context.Context
	replay    *graceReplay
	signature func(token string) string
}

type grantStateKey struct{}

func withGrantState(ctx context.Context) (context.Context, *grantState) {
	g := &grantState{}
	return context.WithValue(ctx, grantStateKey{}, g), g
}

func grantStateOf(ctx context.Context) *grantState {
	if g, ok := ctx.Value(grantStateKey{}).(*grantState); ok {
		return g
	}
	return &grantState{} // outside handleToken: nobody reads it
}

// InvalidateAuthorizeCodeSession claims the code, in the transaction that
// stores the tokens. Of two requests racing with one code exactly one
// succeeds; the other's transaction is rolled back.
func (s *fositeStore) InvalidateAuthorizeCodeSession(ctx context.Context, sig string) error {
	err := s.store.DeactivateToken(ctx, storage.KindAuthorizeCode, sig)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
		// Deleted since fosite read it (the person revoked the app or
		// signed out): nothing was issued with it, nothing to revoke. Or
		// the claim met a concurrent writer on another replica and was
		// rolled back (ErrConflict): this request lost, answered as a
		// lost race is, without revoking what the winner, if any, issued.
		grantStateOf(ctx).lost = true
		return errCodeUsed()
	}
	if !errors.Is(err, storage.ErrInactive) {
		return fositeErr(err)
	}
	rec, err := s.store.GetToken(ctx, storage.KindAuthorizeCode, sig)
	if err != nil {
		return fositeErr(err)
	}
	g := grantStateOf(ctx)
	g.lost, g.requestID = true, rec.RequestID
	return errCodeUsed()
}

// errCodeUsed is a new error each time: fosite's errors are not safe to
// share between requests (it sets fields on them).
func errCodeUsed() error {
	return fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
}

// revokeCodeGrant revokes the tokens a code issued, after a request lost
// the code's claim (see grantState).
func (s *fositeStore) revokeCodeGrant(ctx context.Context, requestID string) error {
	if requestID == "" {
		return nil
	}
	// The refresh token first: it outlives the access tokens, so a crash
	// in between must not leave it.
	if err := s.RevokeRefreshToken(ctx, requestID); err != nil {
		return err
	}
	return s.RevokeAccessToken(ctx, requestID)
}

// CreateAccessTokenSession stores the token's request, except for a
// sealed token, which carries it (cctoken.go).
func (s *fositeStore) CreateAccessTokenSession(ctx context.Context, sig string, r fosite.Requester) error {
	if _, sealed := sealedTokenOf(sig); sealed {
		return nil
	}
	return s.create(ctx, storage.KindAccessToken, sig, r, fosite.AccessToken, "")
}

func (s *fositeStore) GetAccessTokenSession(ctx context.Context, sig string, sess fosite.Session) (fosite.Requester, error) {
	if token, sealed := sealedTokenOf(sig); sealed {
		return s.sealedSession(ctx, token, sess)
	}
	_, req, err := s.get(ctx, storage.KindAccessToken, sig, sess)
	return req, err
}

func (s *fositeStore) DeleteAccessTokenSession(ctx context.Context, sig string) error {
	if token, sealed := sealedTokenOf(sig); sealed {
		g, err := s.cc.open(token)
		if err != nil {
			return nil // nothing that opens, nothing to delete
		}
		return s.revokeGrant(ctx, g.requestID)
	}
	return ignoreNotFound(s.store.DeleteToken(ctx, storage.KindAccessToken, sig))
}

func (s *fositeStore) CreateRefreshTokenSession(ctx context.Context, sig, accessSig string, r fosite.Requester) error {
	return s.create(ctx, storage.KindRefreshToken, sig, r, fosite.RefreshToken, accessSig)
}

// GetRefreshTokenSession returns ErrInactiveToken with the request for a
// rotated token, which is how fosite detects reuse and revokes the family.
func (s *fositeStore) GetRefreshTokenSession(ctx context.Context, sig string, sess fosite.Session) (fosite.Requester, error) {
	rec, req, err := s.get(ctx, storage.KindRefreshToken, sig, sess)
	if err != nil {
		return nil, err
	}
	if !rec.Active {
		if s.replays != nil && len(rec.Replay) > 0 && s.now().Before(rec.ReplayUntil) && ctx.Value(graceReadKey{}) != nil {
			// Retired, with an answer kept: a racing request (on
			// another replica, say) rotated it since the grace handler
			// looked. The handler decides (rotatedMeanwhile) before
			// fosite would take this for reuse.
			return req, errRotatedMeanwhile
		}
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

func (s *fositeStore) DeleteRefreshTokenSession(ctx context.Context, sig string) error {
	return ignoreNotFound(s.store.DeleteToken(ctx, storage.KindRefreshToken, sig))
}

// RotateRefreshToken retires the presented refresh token and the access
// tokens of its family. It runs inside fosite's transaction, and the
// deactivation is atomic: of two concurrent refreshes with one token exactly
// one succeeds; the other is told to retry, and its retry is then caught as
// reuse, which revokes the family (RFC 9700 §4.14.2).
//
// With a refresh grace the loser is given the winner's answer instead
// (lostRotation), and the winner's commit waits for handleToken to seal
// its answer into it (Commit).
func (s *fositeStore) RotateRefreshToken(ctx context.Context, reqID, sig string) error {
	if err := s.store.DeactivateToken(ctx, storage.KindRefreshToken, sig); err != nil {
		if errors.Is(err, storage.ErrInactive) {
			if rerr := s.lostRotation(ctx, sig); rerr != nil {
				return rerr
			}
		}
		if errors.Is(err, storage.ErrConflict) {
			// The claim met a concurrent writer (another replica) and was
			// rolled back: answered as a lost rotation race is (fosite's
			// "retry the request"), not as the 503 of fositeErr.
			return fosite.ErrInactiveToken.WithWrap(err)
		}
		return fositeErr(err)
	}
	if s.replays != nil {
		grantStateOf(ctx).rotated = sig
	}
	return fositeErr(s.store.RevokeByRequestID(ctx, storage.KindAccessToken, reqID))
}

func (s *fositeStore) RevokeRefreshToken(ctx context.Context, reqID string) error {
	return fositeErr(s.store.RevokeByRequestID(ctx, storage.KindRefreshToken, reqID))
}

// RevokeAccessToken deletes the grant's stored access tokens and puts the
// grant on the deny list, which is what ends its sealed ones.
func (s *fositeStore) RevokeAccessToken(ctx context.Context, reqID string) error {
	if err := s.store.RevokeByRequestID(ctx, storage.KindAccessToken, reqID); err != nil {
		return fositeErr(err)
	}
	return s.revokeGrant(ctx, reqID)
}

// hashedKey is the storage key for a value that is itself a credential
// (an authorization code keying an OIDC session, a request_uri, a session
// cookie): its hash, so a copy of the database yields nothing usable.
func hashedKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

func (s *fositeStore) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.create(ctx, storage.KindOIDC, hashedKey(code), r, fosite.AuthorizeCode, "")
}

func (s *fositeStore) GetOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) (fosite.Requester, error) {
	_, req, err := s.get(ctx, storage.KindOIDC, hashedKey(code), r.GetSession())
	return req, err
}

// DeleteOpenIDConnectSession does nothing: fosite calls it after the token
// transaction, so deleting would cost a commit of its own. The record is
// useless once the code is claimed (it is read only with the code) and
// expires with the code's lifespan.
func (s *fositeStore) DeleteOpenIDConnectSession(context.Context, string) error {
	return nil
}

func (s *fositeStore) CreatePKCERequestSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.create(ctx, storage.KindPKCE, sig, r, fosite.AuthorizeCode, "")
}

func (s *fositeStore) GetPKCERequestSession(ctx context.Context, sig string, sess fosite.Session) (fosite.Requester, error) {
	_, req, err := s.get(ctx, storage.KindPKCE, sig, sess)
	return req, err
}

// DeletePKCERequestSession does nothing: fosite deletes the challenge
// before it compares the verifier, so a wrong verifier (anyone can send
// one for a public client) would spend the code of the person signing in.
// Once the code is claimed the challenge protects nothing; it expires
// with the code's lifespan.
func (s *fositeStore) DeletePKCERequestSession(context.Context, string) error {
	return nil
}

// BeginTX, Commit and Rollback implement fosite's storage.Transactional,
// so each token grant is one commit instead of one per record.
func (s *fositeStore) BeginTX(ctx context.Context) (context.Context, error) {
	txCtx, err := s.store.BeginTx(ctx)
	if err == nil {
		grantStateOf(ctx).tx = txCtx
	}
	return txCtx, err
}

func (s *fositeStore) Rollback(ctx context.Context) error { return s.store.RollbackTx(ctx) }

// Commit commits fosite's transaction, except a refresh's with a refresh
// grace: handleToken commits that one once it holds the whole answer
// (commitRotation).
func (s *fositeStore) Commit(ctx context.Context) error {
	if g := grantStateOf(ctx); g.rotated != "" && g.pending == nil {
		g.pending = ctx
		return nil
	}
	return s.store.CommitTx(ctx)
}

// create stores what the kind's readers need (recordForm, encodeSession).
func (s *fositeStore) create(ctx context.Context, kind storage.TokenKind, sig string, r fosite.Requester, tt fosite.TokenType, accessSig string) error {
	rec := storage.TokenRequest{
		Kind:            kind,
		Signature:       sig,
		RequestID:       r.GetID(),
		ClientID:        r.GetClient().GetID(),
		RequestedAt:     r.GetRequestedAt().Truncate(time.Second), // introspection's iat: seconds
		Scopes:          r.GetRequestedScopes(),
		GrantedScopes:   r.GetGrantedScopes(),
		Audience:        r.GetRequestedAudience(),
		GrantedAudience: r.GetGrantedAudience(),
		Form:            recordForm(kind, r.GetRequestForm()),
		Active:          true,
		// accessSig is not stored: nothing reads it, a refresh token's
		// access tokens are found by request ID.
	}
	if r.GetSession() != nil {
		rec.Subject = r.GetSession().GetSubject()
		rec.ExpiresAt = r.GetSession().GetExpiresAt(tt)
		if kind == storage.KindAuthorizeCode && !rec.ExpiresAt.IsZero() {
			rec.ExpiresAt = rec.ExpiresAt.Add(s.accessLifespan)
		}
	}
	sess, err := encodeSession(r.GetSession(), rec.Subject, kind)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	rec.Session = sess
	return fositeErr(s.store.CreateToken(ctx, rec))
}

// get loads a record and rebuilds the fosite request around sess (a fresh
// session when fosite passes none). A token whose client was deleted is
// treated as not found.
func (s *fositeStore) get(ctx context.Context, kind storage.TokenKind, sig string, sess fosite.Session) (storage.TokenRequest, *fosite.Request, error) {
	rec, err := s.store.GetToken(ctx, kind, sig)
	if err != nil {
		return rec, nil, fositeErr(err)
	}
	if sess == nil {
		sess = newSession()
	}
	if err := decodeSession(rec.Session, rec.Subject, sess); err != nil {
		return rec, nil, fmt.Errorf("decode session: %w", err)
	}
	client, err := s.GetClient(ctx, rec.ClientID)
	if err != nil {
		return rec, nil, err
	}
	req := &fosite.Request{
		ID:                rec.RequestID,
		RequestedAt:       rec.RequestedAt,
		Client:            client,
		RequestedScope:    rec.Scopes,
		GrantedScope:      rec.GrantedScopes,
		RequestedAudience: rec.Audience,
		GrantedAudience:   rec.GrantedAudience,
		Form:              url.Values(rec.Form),
		Session:           sess,
	}
	if req.Form == nil {
		req.Form = url.Values{}
	}
	return rec, req, nil
}

// ignoreNotFound makes deletes idempotent, as fosite's handlers expect.
func ignoreNotFound(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return fositeErr(err)
}

// fositeErr maps storage sentinels to fosite's and passes the rest through.
func fositeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return fosite.ErrNotFound.WithWrap(err)
	case errors.Is(err, storage.ErrInactive):
		return fosite.ErrInactiveToken.WithWrap(err)
	case errors.Is(err, storage.ErrConflict):
		// Lost a race with a concurrent writer; nothing was kept and the
		// same request may succeed: 503 temporarily_unavailable, never a
		// 500 (storageUnavailable answers it where fosite wraps it).
		return fosite.ErrTemporarilyUnavailable.WithHint("The request met a concurrent one. Please try again.").WithWrap(err)
	default:
		return err
	}
}
