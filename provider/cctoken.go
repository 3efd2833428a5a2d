package provider

// Client-credentials access tokens carry their grant, sealed, instead of
// being stored. Such a grant has no person, no refresh token and no family
// to revoke together, and it is what a busy CI pipeline requests most:
// storing each one made every such request wait for an fsync and grew the
// database by a record per token. A sealed token is checked by opening it
// (AES-256-GCM under a key derived from the provider secret), so
// introspection, userinfo and revocation work as for a stored one:
//
//   - introspection and userinfo open the token and load its client; a
//     deleted client's tokens are inactive, as before;
//   - revocation (RFC 7009), like every revocation of a grant, writes the
//     grant's request ID into the deny list (the JTI records) until the
//     token would have expired anyway; the request ID is inside the sealed
//     token, so nobody can revoke a token they do not hold.
//
// JWT access tokens (access_token_format jwt) and every grant made for a
// person stay stored.

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"
)

// sealedTokenPrefix starts every sealed token; an HMAC token starts with
// fosite's "ory_at_" and a JWT with "ey".
const sealedTokenPrefix = "cct_"

// sealedTokenVersion is written into the plaintext, so the layout can
// change while old tokens still open.
const sealedTokenVersion = 1

func isSealedToken(token string) bool { return strings.HasPrefix(token, sealedTokenPrefix) }

// sealedSignaturePrefix marks the storage signature of a sealed token (the
// token itself, behind it). Other signatures are base64url, which has no
// colon, so one can never be taken for a sealed token's.
const sealedSignaturePrefix = "sealed:"

func sealedSignature(token string) string { return sealedSignaturePrefix + token }

// sealedTokenOf returns the token behind a sealed token's signature.
func sealedTokenOf(sig string) (string, bool) { return strings.CutPrefix(sig, sealedSignaturePrefix) }

// sealedGrant is what a sealed token carries: what introspection answers.
type sealedGrant struct {
	requestID string
	clientID  string
	scopes    []string
	audience  []string
	issuedAt  time.Time
	expiresAt time.Time
	// clientCreated is when the client record was created: a client
	// deleted and added again under the same ID does not get its old
	// tokens back.
	clientCreated int64
}

// ccTokens seals and opens client-credentials tokens.
type ccTokens struct {
	aead cipher.AEAD
}

func newCCTokens(providerSecret []byte) (*ccTokens, error) {
	block, err := aes.NewCipher(secret.DeriveKey(providerSecret, "client-credentials-access-token"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &ccTokens{aead: aead}, nil
}

// sealedPlain is a sealed token's plaintext, CBOR with integer keys.
type sealedPlain struct {
	Version       int      `cbor:"0,keyasint"`
	IssuedAt      int64    `cbor:"1,keyasint"`
	ExpiresAt     int64    `cbor:"2,keyasint"`
	ClientCreated int64    `cbor:"3,keyasint"`
	RequestID     string   `cbor:"4,keyasint"`
	ClientID      string   `cbor:"5,keyasint"`
	Scopes        []string `cbor:"6,keyasint,omitempty"`
	Audience      []string `cbor:"7,keyasint,omitempty"`
}

// seal returns the token for g. The prefix is authenticated with it.
func (c *ccTokens) seal(g sealedGrant) (string, error) {
	plain, err := sessionEnc.Marshal(sealedPlain{
		Version: sealedTokenVersion, IssuedAt: g.issuedAt.Unix(), ExpiresAt: g.expiresAt.Unix(),
		ClientCreated: g.clientCreated, RequestID: g.requestID, ClientID: g.clientID,
		Scopes: g.scopes, Audience: g.audience,
	})
	if err != nil {
		return "", err
	}
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plain)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := c.aead.Seal(nonce, nonce, plain, []byte(sealedTokenPrefix))
	return sealedTokenPrefix + base64.RawURLEncoding.EncodeToString(sealed), nil
}

var errNotSealedToken = errors.New("not a valid sealed token")

// open returns the grant of a token sealed by seal with the same provider
// secret; anything else, edited or truncated, is errNotSealedToken.
func (c *ccTokens) open(token string) (sealedGrant, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, sealedTokenPrefix))
	if err != nil || !isSealedToken(token) || len(raw) < c.aead.NonceSize() {
		return sealedGrant{}, errNotSealedToken
	}
	nonce, sealed := raw[:c.aead.NonceSize()], raw[c.aead.NonceSize():]
	plain, err := c.aead.Open(nil, nonce, sealed, []byte(sealedTokenPrefix))
	if err != nil {
		return sealedGrant{}, errNotSealedToken
	}
	var p sealedPlain
	if err := sessionDec.Unmarshal(plain, &p); err != nil || p.Version != sealedTokenVersion {
		return sealedGrant{}, errNotSealedToken
	}
	return sealedGrant{
		requestID: p.RequestID, clientID: p.ClientID, scopes: p.Scopes, audience: p.Audience,
		issuedAt: time.Unix(p.IssuedAt, 0).UTC(), expiresAt: time.Unix(p.ExpiresAt, 0).UTC(),
		clientCreated: p.ClientCreated,
	}, nil
}

// sealsToken says whether r's access token is sealed rather than stored:
// a client-credentials grant of a client with opaque access tokens.
func sealsToken(r fosite.Requester) bool {
	ar, ok := r.(fosite.AccessRequester)
	if !ok || !ar.GetGrantTypes().ExactOne("client_credentials") {
		return false
	}
	c, ok := r.GetClient().(*client)
	return ok && c.rec.AccessTokenFormat != accessTokenFormatJWT
}

// generate seals r's grant. Its storage signature carries the token
// (sealedSignature): the storage adapter opens it instead of looking it up.
func (c *ccTokens) generate(r fosite.Requester, now time.Time, lifespan time.Duration) (string, error) {
	exp := r.GetSession().GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() {
		exp = now.Add(lifespan)
	}
	var created int64
	if cl, ok := r.GetClient().(*client); ok {
		created = cl.rec.CreatedAt.UnixNano()
	}
	return c.seal(sealedGrant{
		clientCreated: created,
		requestID:     r.GetID(),
		clientID:      r.GetClient().GetID(),
		scopes:        r.GetGrantedScopes(),
		audience:      r.GetGrantedAudience(),
		issuedAt:      r.GetRequestedAt(),
		expiresAt:     exp,
	})
}

// revokedGrantKey names the deny-list record of a revoked grant among the
// JTIs (which expire and are collected the same way).
func revokedGrantKey(requestID string) string { return "revoked-grant:" + requestID }

// sealedSession rebuilds the request a sealed token stands for, or
// fosite.ErrNotFound when it does not open, its grant was revoked or its
// client is gone.
func (s *fositeStore) sealedSession(ctx context.Context, token string, sess fosite.Session) (fosite.Requester, error) {
	g, err := s.cc.open(token)
	if err != nil {
		return nil, fosite.ErrNotFound.WithWrap(err)
	}
	j, err := s.store.GetJTI(ctx, revokedGrantKey(g.requestID))
	switch {
	case err == nil && j.ExpiresAt.After(s.now()):
		return nil, fosite.ErrNotFound.WithDebug("the grant was revoked")
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return nil, fositeErr(err)
	}
	cl, err := s.GetClient(ctx, g.clientID)
	if err != nil {
		return nil, err
	}
	if c, ok := cl.(*client); !ok || c.rec.CreatedAt.UnixNano() != g.clientCreated {
		return nil, fosite.ErrNotFound.WithDebug("the client was created again since")
	}
	if sess == nil {
		sess = newSession()
	}
	own, ok := sess.(*session)
	if !ok {
		return nil, fmt.Errorf("session of type %T", sess)
	}
	own.Subject = g.clientID
	own.SetExpiresAt(fosite.AccessToken, g.expiresAt)
	return &fosite.Request{
		ID:                g.requestID,
		RequestedAt:       g.issuedAt,
		Client:            cl,
		RequestedScope:    g.scopes,
		GrantedScope:      g.scopes,
		RequestedAudience: g.audience,
		GrantedAudience:   g.audience,
		Form:              url.Values{},
		Session:           own,
	}, nil
}

// revokeGrant puts requestID on the deny list for as long as a token of
// the grant can live (a longer lifespan configured earlier included, up to
// a day).
func (s *fositeStore) revokeGrant(ctx context.Context, requestID string) error {
	now := s.now()
	err := s.store.CreateJTI(ctx, storage.JTI{ID: revokedGrantKey(requestID), ExpiresAt: now.Add(max(s.accessLifespan, 24*time.Hour))}, now)
	if errors.Is(err, storage.ErrAlreadyExists) {
		return nil
	}
	return fositeErr(err)
}
