package oidcctest

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/smallsso/provider/provider/providertest"
)

// Client is a relying party registered at the provider, as the suite's
// client configuration describes it.
type Client struct {
	ID          string
	Secret      string
	RedirectURI string
	// AuthMethod is the token endpoint authentication method:
	// client_secret_basic (the default), client_secret_post,
	// client_secret_jwt, private_key_jwt or none.
	AuthMethod string
	// Key is the client's private key, for private_key_jwt and signed
	// request objects; its KeyID and Algorithm are used as they are.
	Key *jose.JSONWebKey
	// AssertionAudience is the aud of client assertions; empty means the
	// token endpoint, as the suite sends.
	AssertionAudience string
	// IDTokenAlg is the ID token algorithm the client registered; empty
	// means the default, RS256.
	IDTokenAlg string
}

func (c *Client) idTokenAlg() string {
	if c.IDTokenAlg == "" {
		return "RS256"
	}
	return c.IDTokenAlg
}

// Request is one authorization request: the query parameters the suite's
// CreateAuthorizationRequestSteps would send.
type Request struct {
	Client *Client
	Params url.Values
	// Post sends the request as a form POST to the authorization endpoint
	// (oidcc-ensure-post-request-succeeds) instead of a GET.
	Post bool
}

// NewRequest is the suite's default request for a client: response_type
// code, the given scope, a 128-character state (as the prompt-none and
// logout modules send) and a nonce.
func (op *OP) NewRequest(c *Client, scope string) *Request {
	return &Request{Client: c, Params: url.Values{
		"client_id":     {c.ID},
		"redirect_uri":  {c.RedirectURI},
		"scope":         {scope},
		"state":         {RandomString(128)},
		"nonce":         {RandomString(32)},
		"response_type": {"code"},
	}}
}

// With sets parameters as key, value pairs; an empty value removes the
// parameter.
func (r *Request) With(kv ...string) *Request {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			r.Params.Del(kv[i])
		} else {
			r.Params.Set(kv[i], kv[i+1])
		}
	}
	return r
}

func (r *Request) State() string        { return r.Params.Get("state") }
func (r *Request) Nonce() string        { return r.Params.Get("nonce") }
func (r *Request) ResponseType() string { return r.Params.Get("response_type") }

// Has reports whether the response type contains the given value
// ("code", "id_token" or "token").
func (r *Request) Has(responseType string) bool {
	for _, v := range strings.Fields(r.ResponseType()) {
		if v == responseType {
			return true
		}
	}
	return false
}

// URL is the authorization request as a GET URL.
func (op *OP) URL(t testing.TB, r *Request) string {
	t.Helper()
	return op.Endpoint(t, "authorization_endpoint") + "?" + r.Params.Encode()
}

// Login is how the person at the browser answers the provider's pages.
type Login struct {
	Username, Password string
	// Decision answers a consent page: "allow" (the default) or "deny".
	Decision string
}

// Result is where the browser ended after an authorization request.
type Result struct {
	// Params are the authorization response parameters, read from the
	// callback's query, fragment or form_post body; nil when the browser
	// never reached the redirect URI.
	Params url.Values
	// Mode is how they came back: "query", "fragment" or "form_post".
	Mode string
	// CallbackURL is the redirect URI the browser was sent to, for the
	// checks on its own query.
	CallbackURL *url.URL
	// Page is the last provider page when there was no callback.
	Page *providertest.Page
	// LoginPages and ConsentPages count the forms shown on the way.
	LoginPages, ConsentPages int
}

// Authorize sends the browser with the request and plays the person:
// it signs in when a login form appears (failing the test if login is
// nil), answers consent, and stops at the redirect URI, or at a provider
// page that is neither (an error page, say).
func (op *OP) Authorize(t testing.TB, b *providertest.Browser, r *Request, login *Login) *Result {
	t.Helper()
	ctx := context.Background()
	var page *providertest.Page
	var err error
	if r.Post {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, op.Endpoint(t, "authorization_endpoint"), strings.NewReader(r.Params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		page, err = b.Do(req)
	} else {
		page, err = b.Get(ctx, op.URL(t, r))
	}
	if err != nil {
		t.Fatalf("authorization request: %v", err)
	}
	res := &Result{}
	for step := 0; step < 6; step++ {
		if page.Location != nil {
			if !isCallback(page.Location, r.Client.RedirectURI) {
				t.Fatalf("the provider redirected to %s, which is not the redirect URI %s", page.Location.Redacted(), r.Client.RedirectURI)
			}
			res.CallbackURL = page.Location
			if page.Location.Fragment != "" {
				res.Mode = "fragment"
				res.Params, _ = url.ParseQuery(page.Location.Fragment)
			} else {
				res.Mode = "query"
				res.Params = page.Location.Query()
			}
			return res
		}
		res.Page = page
		if page.Status != http.StatusOK {
			return res
		}
		form, err := page.ParseForm()
		if err != nil {
			return res
		}
		if action, err := page.URL.Parse(form.Action); err == nil && isCallback(action, r.Client.RedirectURI) {
			if form.Method != http.MethodPost {
				t.Fatalf("form_post: the form's method is %q, want POST", form.Method)
			}
			res.Mode, res.Params, res.CallbackURL, res.Page = "form_post", form.Values, action, nil
			return res
		}
		set := url.Values{}
		switch {
		case form.Values.Has("password"):
			res.LoginPages++
			if login == nil {
				return res // the caller decides whether a login page was allowed
			}
			set.Set("username", login.Username)
			set.Set("password", login.Password)
		case len(form.Buttons["decision"]) > 0:
			res.ConsentPages++
			if login == nil {
				return res
			}
			d := login.Decision
			if d == "" {
				d = "allow"
			}
			set.Set("decision", d)
		default:
			return res
		}
		if page, err = b.Submit(ctx, page, form, set); err != nil {
			t.Fatalf("submitting the provider's form: %v", err)
		}
	}
	t.Fatalf("the browser went round the provider's pages without end")
	return nil
}

// isCallback reports whether u is the registered redirect URI (scheme,
// host and path; the query is checked by CheckSuccess).
func isCallback(u *url.URL, redirectURI string) bool {
	want, err := url.Parse(redirectURI)
	if err != nil {
		return false
	}
	return u.Scheme == want.Scheme && u.Host == want.Host && u.Path == want.Path
}

// RandomString returns n characters of [A-Za-z0-9], like the suite's
// state and nonce values.
func RandomString(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
