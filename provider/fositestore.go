package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	// codeRetention keeps an authorization code's record this long past
	// its expiry, so that a reuse is still recognised, and the tokens the
	// code issued revoked, while those can live (RFC 6749 §4.1.2).
	codeRetention time.Duration
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
	err := s.store.CreateJTI(ctx, storage.JTI{ID: jti, ExpiresAt: exp})
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
// The code is claimed atomically, but only once every check of the token
// request has passed (codeClaimHandler, composed after the code and PKCE
// handlers): a request from another client, with another redirect_uri or
// without the PKCE verifier learns nothing and spends nothing, so whoever
// intercepted a code cannot burn it for the person signing in. One request
// wins the claim; every other one is told the code was used and the code's
// tokens are revoked. The winner may not have stored its tokens yet at
// that moment, so a replay also leaves a marker that the winner's
// transaction reads: tokens it issues after a replay are revoked before it
// commits. Either the winner commits before the marker is written, and the
// replay's revocation (which follows the marker) finds its tokens, or its
// transaction sees the marker.

// GetAuthorizeCodeSession returns the code's request, or
// ErrInvalidatedAuthorizeCode together with it for a code that was
// redeemed already, so fosite revokes what it issued.
func (s *fositeStore) GetAuthorizeCodeSession(ctx context.Context, sig string, sess fosite.Session) (fosite.Requester, error) {
	rec, req, err := s.get(ctx, storage.KindAuthorizeCode, sig, sess)
	if err != nil {
		return nil, err
	}
	if ctx.Value(fosite.AccessResponseContextKey) != nil {
		return req, nil // issuing the tokens: the claim is this request's own
	}
	if !rec.Active {
		if err := s.markCodeReplayed(ctx, sig, rec); err != nil {
			return nil, err
		}
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	return req, nil
}

// claimAuthorizeCode redeems the code once the token request was checked.
// A request that lost the race is answered invalid_grant, and the code's
// tokens are revoked as for any replay.
func (s *fositeStore) claimAuthorizeCode(ctx context.Context, sig string) error {
	err := s.store.DeactivateToken(ctx, storage.KindAuthorizeCode, sig)
	if err == nil {
		return ignoreNotFound(s.store.DeleteToken(ctx, storage.KindPKCE, sig))
	}
	if !errors.Is(err, storage.ErrInactive) {
		return fositeErr(err)
	}
	rec, err := s.store.GetToken(ctx, storage.KindAuthorizeCode, sig)
	if err != nil {
		return fositeErr(err)
	}
	if err := s.markCodeReplayed(ctx, sig, rec); err != nil {
		return err
	}
	if err := s.RevokeAccessToken(ctx, rec.RequestID); err != nil {
		return err
	}
	if err := s.RevokeRefreshToken(ctx, rec.RequestID); err != nil {
		return err
	}
	return fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
}

// markCodeReplayed leaves the replay marker the winner's transaction reads
// (InvalidateAuthorizeCodeSession).
func (s *fositeStore) markCodeReplayed(ctx context.Context, sig string, rec storage.TokenRequest) error {
	exp := rec.ExpiresAt
	if exp.IsZero() || exp.Before(s.now()) {
		exp = s.now().Add(s.codeRetention)
	}
	err := s.store.CreateJTI(ctx, storage.JTI{ID: codeReplayKey(sig), ExpiresAt: exp})
	if err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
		return fositeErr(err)
	}
	return nil
}

// codeClaimHandler claims the authorization code of a token request after
// fosite's code and PKCE handlers have checked it (see claimAuthorizeCode).
type codeClaimHandler struct {
	store *fositeStore
	codes oauth2.AuthorizeCodeStrategy
}

func (h *codeClaimHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne("authorization_code")
}

func (h *codeClaimHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h *codeClaimHandler) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	return h.store.claimAuthorizeCode(ctx, h.codes.AuthorizeCodeSignature(ctx, r.GetRequestForm().Get("code")))
}

func (h *codeClaimHandler) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	return fosite.ErrUnknownRequest
}

func codeClaimFactory(_ fosite.Configurator, store any, strategy any) any {
	return &codeClaimHandler{store: store.(*fositeStore), codes: strategy.(oauth2.AuthorizeCodeStrategy)}
}

// InvalidateAuthorizeCodeSession runs in the transaction that stores the
// tokens. The code was claimed already (GetAuthorizeCodeSession); if it
// was replayed meanwhile, the grant is revoked when the transaction
// commits.
func (s *fositeStore) InvalidateAuthorizeCodeSession(ctx context.Context, sig string) error {
	err := s.store.DeactivateToken(ctx, storage.KindAuthorizeCode, sig)
	if err != nil && !errors.Is(err, storage.ErrInactive) {
		return fositeErr(err)
	}
	_, err = s.store.GetJTI(ctx, codeReplayKey(sig))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return fositeErr(err)
	}
	rec, err := s.store.GetToken(ctx, storage.KindAuthorizeCode, sig)
	if err != nil {
		return fositeErr(err)
	}
	if tx, ok := ctx.Value(grantTxKey{}).(*grantTx); ok {
		tx.revoke = append(tx.revoke, rec.RequestID)
		return nil
	}
	// Outside a transaction nothing is issued yet that could be revoked.
	return fosite.ErrInvalidatedAuthorizeCode
}

// codeReplayKey names the replay marker of a code (kept with the JTIs,
// which expire and are collected the same way), in a namespace of its own.
func codeReplayKey(sig string) string { return "authorization-code-replayed:" + sig }

// grantTx is what a transaction begun by fosite must do before it commits.
type grantTx struct {
	// revoke lists request IDs whose access and refresh tokens are revoked
	// (a replayed code's).
	revoke []string
}

type grantTxKey struct{}

func (s *fositeStore) CreateAccessTokenSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.create(ctx, storage.KindAccessToken, sig, r, fosite.AccessToken, "")
}

func (s *fositeStore) GetAccessTokenSession(ctx context.Context, sig string, sess fosite.Session) (fosite.Requester, error) {
	_, req, err := s.get(ctx, storage.KindAccessToken, sig, sess)
	return req, err
}

func (s *fositeStore) DeleteAccessTokenSession(ctx context.Context, sig string) error {
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
func (s *fositeStore) RotateRefreshToken(ctx context.Context, reqID, sig string) error {
	if err := s.store.DeactivateToken(ctx, storage.KindRefreshToken, sig); err != nil {
		return fositeErr(err)
	}
	return fositeErr(s.store.RevokeByRequestID(ctx, storage.KindAccessToken, reqID))
}

func (s *fositeStore) RevokeRefreshToken(ctx context.Context, reqID string) error {
	return fositeErr(s.store.RevokeByRequestID(ctx, storage.KindRefreshToken, reqID))
}

func (s *fositeStore) RevokeAccessToken(ctx context.Context, reqID string) error {
	return fositeErr(s.store.RevokeByRequestID(ctx, storage.KindAccessToken, reqID))
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

func (s *fositeStore) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return ignoreNotFound(s.store.DeleteToken(ctx, storage.KindOIDC, hashedKey(code)))
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
// The challenge is deleted when the code is claimed (claimAuthorizeCode),
// and expires with the code otherwise.
func (s *fositeStore) DeletePKCERequestSession(context.Context, string) error {
	return nil
}

// BeginTX, Commit and Rollback implement fosite's storage.Transactional,
// so each token grant is one commit instead of one per record.
func (s *fositeStore) BeginTX(ctx context.Context) (context.Context, error) {
	ctx, err := s.store.BeginTx(ctx)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, grantTxKey{}, &grantTx{}), nil
}

// Commit revokes, inside the transaction, what must not outlive it (see
// InvalidateAuthorizeCodeSession), then commits.
func (s *fositeStore) Commit(ctx context.Context) error {
	if tx, ok := ctx.Value(grantTxKey{}).(*grantTx); ok {
		for _, id := range tx.revoke {
			for _, kind := range []storage.TokenKind{storage.KindAccessToken, storage.KindRefreshToken} {
				if err := s.store.RevokeByRequestID(ctx, kind, id); err != nil {
					return fositeErr(err) // fosite rolls back
				}
			}
		}
	}
	return s.store.CommitTx(ctx)
}
func (s *fositeStore) Rollback(ctx context.Context) error { return s.store.RollbackTx(ctx) }

func (s *fositeStore) create(ctx context.Context, kind storage.TokenKind, sig string, r fosite.Requester, tt fosite.TokenType, accessSig string) error {
	sess, err := json.Marshal(r.GetSession())
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	rec := storage.TokenRequest{
		Kind:            kind,
		Signature:       sig,
		RequestID:       r.GetID(),
		ClientID:        r.GetClient().GetID(),
		RequestedAt:     r.GetRequestedAt(),
		Scopes:          r.GetRequestedScopes(),
		GrantedScopes:   r.GetGrantedScopes(),
		Audience:        r.GetRequestedAudience(),
		GrantedAudience: r.GetGrantedAudience(),
		Form:            r.GetRequestForm(),
		Session:         sess,
		Active:          true,
		AccessSignature: accessSig,
	}
	if r.GetSession() != nil {
		rec.Subject = r.GetSession().GetSubject()
		rec.ExpiresAt = r.GetSession().GetExpiresAt(tt)
		if kind == storage.KindAuthorizeCode && !rec.ExpiresAt.IsZero() {
			rec.ExpiresAt = rec.ExpiresAt.Add(s.codeRetention)
		}
	}
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
	if len(rec.Session) > 0 {
		if err := json.Unmarshal(rec.Session, sess); err != nil {
			return rec, nil, fmt.Errorf("decode session: %w", err)
		}
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
	default:
		return err
	}
}
