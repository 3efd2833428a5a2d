package provider

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"time"

	"github.com/smallsso/provider/provider/secret"

	"github.com/smallsso/provider/storage"
)

// Cookie names get the __Host- prefix over https, which pins them to this
// host and path "/" and forbids a Domain attribute.
func (p *Provider) cookieName(base string) string {
	if p.secure {
		return "__Host-" + base
	}
	return base
}

func (p *Provider) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     p.cookieName(name),
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   p.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// sessionID is what the store keeps for a session cookie: its hash, so a
// copy of the database cannot be replayed as cookies.
func sessionID(cookie string) string { return hashedKey(cookie) }

// csrfToken returns the browser's CSRF token, creating the cookie if the
// browser has none yet (double-submit: a cross-site form cannot read it).
func (p *Provider) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(p.cookieName("csrf")); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	t := secret.NewToken()
	p.setCookie(w, "csrf", t, 0)
	return t
}

// checkCSRF compares the form's token with the cookie in constant time.
func (p *Provider) checkCSRF(r *http.Request) (string, bool) {
	c, err := r.Cookie(p.cookieName("csrf"))
	if err != nil || len(c.Value) < 32 {
		return "", false
	}
	form := r.PostFormValue("csrf")
	return c.Value, subtle.ConstantTimeCompare([]byte(form), []byte(c.Value)) == 1
}

// currentSession returns the signed-in user's browser session, if any.
func (p *Provider) currentSession(ctx context.Context, r *http.Request) (storage.BrowserSession, bool, error) {
	if s, ok := r.Context().Value(sessionCtxKey{}).(storage.BrowserSession); ok {
		return s, true, nil
	}
	c, err := r.Cookie(p.cookieName("session"))
	if err != nil || c.Value == "" {
		return storage.BrowserSession{}, false, nil
	}
	s, err := p.store.GetBrowserSession(ctx, sessionID(c.Value))
	if errors.Is(err, storage.ErrNotFound) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	if !s.ExpiresAt.IsZero() && p.now().After(s.ExpiresAt) {
		return s, false, nil
	}
	return s, true, nil
}

// startSession signs the browser in. Any previous session is deleted and a
// fresh ID issued, so a session fixed before login is worthless after it.
// The server ends it after the login lifespan either way; remember ("keep
// me signed in") only decides whether the cookie outlives the browser.
// The new session is returned because the request still carries the old
// cookie (see withSession).
func (p *Provider) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string, authTime time.Time, remember bool, amr []string) (storage.BrowserSession, error) {
	token := secret.NewToken()
	s := storage.BrowserSession{
		ID:        sessionID(token),
		UserID:    userID,
		SID:       secret.NewToken(),
		AuthTime:  authTime,
		AMR:       amr,
		CreatedAt: authTime,
		ExpiresAt: authTime.Add(p.cfg.LoginSessionLifespan),
		Remember:  remember,
	}
	// The old session goes and the new one comes in one commit.
	txCtx, err := p.store.BeginTx(ctx)
	if err != nil {
		return storage.BrowserSession{}, err
	}
	defer p.store.RollbackTx(txCtx) // a no-op once committed
	if c, err := r.Cookie(p.cookieName("session")); err == nil && c.Value != "" {
		if err := p.store.DeleteBrowserSession(txCtx, sessionID(c.Value)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			p.store.RollbackTx(txCtx)
			return storage.BrowserSession{}, err
		}
	}
	if err := p.store.CreateBrowserSession(txCtx, s); err != nil {
		p.store.RollbackTx(txCtx)
		return storage.BrowserSession{}, err
	}
	if err := p.store.CommitTx(txCtx); err != nil {
		return storage.BrowserSession{}, err
	}
	maxAge := 0 // a session cookie: gone when the browser closes
	if remember {
		maxAge = int(p.cfg.LoginSessionLifespan / time.Second)
	}
	p.setCookie(w, "session", token, maxAge)
	return s, nil
}

type sessionCtxKey struct{}

// withSession makes s the request's session for currentSession: a request
// that just signed in still carries the previous cookie, and one that
// already read its session need not read it again.
func withSession(r *http.Request, s storage.BrowserSession) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), sessionCtxKey{}, s))
}
