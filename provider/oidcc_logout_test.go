package provider_test

// The conformance suite's three logout plans (checklist §1.7 and §4):
// oidcc-rp-initiated-logout-certification-test-plan,
// oidcc-backchannel-rp-initiated-logout-certification-test-plan and
// oidcc-frontchannel-rp-initiated-logout-certification-test-plan, with the
// static client registered as the suite's instructions say.

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/oidcctest"
	"github.com/smallsso/provider/provider/providertest"
)

const suitePostLogout = suiteBase + "/post_logout_redirect"

// loggedInAtSuite is the state after the logout modules' first
// authorization: the browser with its session and the flow's tokens.
type loggedInAtSuite struct {
	op     *oidccOP
	client *oidcctest.Client
	b      *providertest.Browser
	flow   *oidcctest.Flow
}

// rpLogoutStart runs AbstractOIDCCRpInitiatedLogout up to the end-session
// request: a normal code flow (128-character state) with token exchange
// and userinfo, for client (op.Basic when nil).
func rpLogoutStart(t *testing.T, op *oidccOP, client *oidcctest.Client) loggedInAtSuite {
	t.Helper()
	if client == nil {
		client = op.Basic
	}
	b := op.Browser()
	f := op.Run(t, b, op.NewRequest(client, "openid"), op.User, nil)
	if f.LatestIDToken().Str("sid") == "" {
		t.Fatal("the ID token has no sid; the logout profiles need one")
	}
	return loggedInAtSuite{op: op, client: client, b: b, flow: f}
}

func (s loggedInAtSuite) request() url.Values {
	return oidcctest.EndSessionRequest(s.flow.LatestIDToken(), suitePostLogout)
}

// stillSignedIn shows a refused request left the session alone: a silent
// authorization still succeeds. (The suite ends those modules with a
// screenshot; this is our own addition.)
func (s loggedInAtSuite) stillSignedIn(t *testing.T) {
	t.Helper()
	r := s.op.NewRequest(s.client, "openid").With("prompt", "none")
	s.op.CheckSuccess(t, r, s.op.Authorize(t, s.b, r, nil))
}

func pageSays(t *testing.T, page *providertest.Page, status int, texts ...string) {
	t.Helper()
	text := oidcctest.PageText(page.Body)
	if page.Status != status {
		t.Errorf("HTTP %d, want %d: %s", page.Status, status, text)
	}
	for _, want := range texts {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not say %q: %s", want, text)
		}
	}
}

func TestOIDCC_RPInitiatedLogoutDiscoveryEndpointVerification(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	op.CheckLogoutDiscovery(t, false, false)
}

func TestOIDCC_RPInitiatedLogout(t *testing.T) {
	t.Parallel()
	s := rpLogoutStart(t, newOIDCCOP(t), nil)
	params := s.request()
	res := s.op.EndSession(t, s.b, params, true)
	oidcctest.CheckPostLogoutRedirect(t, res.Redirect, suitePostLogout, params)
	if res.Confirmations != 0 {
		t.Errorf("asked %d times to confirm although the hint proves the request", res.Confirmations)
	}
	s.op.CheckLoggedOut(t, s.b, s.client, "openid")
}

func TestOIDCC_RPInitiatedLogoutBadPostLogoutRedirectURI(t *testing.T) {
	t.Parallel()
	s := rpLogoutStart(t, newOIDCCOP(t), nil)
	params := s.request()
	params.Set("post_logout_redirect_uri", suiteBase+"/post_logout_redirect_bad")
	page := oidcctest.CheckNoPostLogoutRedirect(t, s.op.EndSession(t, s.b, params, false), suitePostLogout)
	// REVIEW: a confirmation that says why the person will not be sent back.
	pageSays(t, page, http.StatusOK, "Sign out of", "not registered")
	// Confirming signs out and still does not redirect.
	res := s.op.EndSession(t, s.b, params, true)
	pageSays(t, oidcctest.CheckNoPostLogoutRedirect(t, res, suitePostLogout), http.StatusOK, "You are signed out")
	s.op.CheckLoggedOut(t, s.b, s.client, "openid")
}

func TestOIDCC_RPInitiatedLogoutQueryAddedToPostLogoutRedirectURI(t *testing.T) {
	t.Parallel()
	s := rpLogoutStart(t, newOIDCCOP(t), nil)
	params := s.request()
	params.Set("post_logout_redirect_uri", suitePostLogout+"?foo=bar")
	page := oidcctest.CheckNoPostLogoutRedirect(t, s.op.EndSession(t, s.b, params, true), suitePostLogout)
	pageSays(t, page, http.StatusOK, "You are signed out", "not registered")
}

func TestOIDCC_RPInitiatedLogoutModifiedIDTokenHint(t *testing.T) {
	t.Parallel()
	s := rpLogoutStart(t, newOIDCCOP(t), nil)
	params := s.request()
	// The suite re-encodes the hint with alg none and drops the signature.
	parts := strings.Split(params.Get("id_token_hint"), ".")
	params.Set("id_token_hint", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))+"."+parts[1]+".")
	page := oidcctest.CheckNoPostLogoutRedirect(t, s.op.EndSession(t, s.b, params, true), suitePostLogout)
	pageSays(t, page, http.StatusBadRequest, "not issued here")
	s.stillSignedIn(t)
}

func TestOIDCC_RPInitiatedLogoutBadIDTokenHint(t *testing.T) {
	t.Parallel()
	s := rpLogoutStart(t, newOIDCCOP(t), nil)
	// The suite signs its own "ID token" with its own key.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: oidcctest.RandomString(8)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	body, _ := json.Marshal(map[string]any{"iss": s.client.ID, "aud": s.op.Issuer, "sub": "SubjectID", "iat": now, "exp": now + 300})
	jws, err := signer.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	hint, _ := jws.CompactSerialize()
	params := s.request()
	params.Set("id_token_hint", hint)
	page := oidcctest.CheckNoPostLogoutRedirect(t, s.op.EndSession(t, s.b, params, true), suitePostLogout)
	pageSays(t, page, http.StatusBadRequest, "not issued here")
	s.stillSignedIn(t)
}

func TestOIDCC_RPInitiatedLogoutNoIDTokenHint(t *testing.T) {
	t.Parallel()
	s := rpLogoutStart(t, newOIDCCOP(t), nil)
	params := s.request()
	params.Del("id_token_hint")
	page := oidcctest.CheckNoPostLogoutRedirect(t, s.op.EndSession(t, s.b, params, false), suitePostLogout)
	pageSays(t, page, http.StatusOK, "Sign out of", "not registered")
	res := s.op.EndSession(t, s.b, params, true)
	pageSays(t, oidcctest.CheckNoPostLogoutRedirect(t, res, suitePostLogout), http.StatusOK, "You are signed out")
	s.op.CheckLoggedOut(t, s.b, s.client, "openid")
}

func TestOIDCC_RPInitiatedLogoutNoParams(t *testing.T) {
	t.Parallel()
	s := rpLogoutStart(t, newOIDCCOP(t), nil)
	res := s.op.EndSession(t, s.b, nil, true)
	// ExpectSuccessfulLogoutPage: the person confirms, then sees it.
	pageSays(t, oidcctest.CheckNoPostLogoutRedirect(t, res, suitePostLogout), http.StatusOK, "You are signed out")
	if res.Confirmations != 1 {
		t.Errorf("confirmations = %d: a request anyone could send must be confirmed", res.Confirmations)
	}
	s.op.CheckLoggedOut(t, s.b, s.client, "openid")
}

func TestOIDCC_RPInitiatedLogoutNoPostLogoutRedirectURI(t *testing.T) {
	t.Parallel()
	s := rpLogoutStart(t, newOIDCCOP(t), nil)
	params := s.request()
	params.Del("post_logout_redirect_uri")
	res := s.op.EndSession(t, s.b, params, false)
	pageSays(t, oidcctest.CheckNoPostLogoutRedirect(t, res, suitePostLogout), http.StatusOK, "You are signed out")
	s.op.CheckLoggedOut(t, s.b, s.client, "openid")
}

func TestOIDCC_RPInitiatedLogoutNoState(t *testing.T) {
	t.Parallel()
	s := rpLogoutStart(t, newOIDCCOP(t), nil)
	params := s.request()
	params.Del("state")
	res := s.op.EndSession(t, s.b, params, true)
	oidcctest.CheckPostLogoutRedirect(t, res.Redirect, suitePostLogout, params)
	s.op.CheckLoggedOut(t, s.b, s.client, "openid")
}

func TestOIDCC_RPInitiatedLogoutOnlyState(t *testing.T) {
	t.Parallel()
	s := rpLogoutStart(t, newOIDCCOP(t), nil)
	params := url.Values{"state": {oidcctest.RandomString(32)}}
	res := s.op.EndSession(t, s.b, params, true)
	pageSays(t, oidcctest.CheckNoPostLogoutRedirect(t, res, suitePostLogout), http.StatusOK, "You are signed out")
	s.op.CheckLoggedOut(t, s.b, s.client, "openid")
}

// suiteBackchannel is the suite's <base>/backchannel_logout: it records
// the request and answers 200 with Cache-Control: no-store, as the module
// does. It listens on loopback, where plain http is allowed.
type suiteBackchannel struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []backchannelRequest
}

type backchannelRequest struct {
	method, contentType string
	form                url.Values
}

func newSuiteBackchannel(t *testing.T) *suiteBackchannel {
	s := &suiteBackchannel{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		s.mu.Lock()
		s.reqs = append(s.reqs, backchannelRequest{r.Method, r.Header.Get("Content-Type"), r.PostForm})
		s.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *suiteBackchannel) URI() string { return s.srv.URL + "/test/a/smallsso/backchannel_logout" }

func (s *suiteBackchannel) received() []backchannelRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]backchannelRequest(nil), s.reqs...)
}

// suiteLogoutClient is the static client of the back- and front-channel
// plans: the basic client plus the channel's logout URI, with
// *_session_required as a dynamic client would register.
func suiteLogoutClient(id string, edit func(*clientspec.Spec)) (clientspec.Spec, clientspec.Spec) {
	spec := suiteClientSpec(id, id+"-secret", "client_secret_basic")
	edit(&spec)
	stored := spec
	stored.Secret, stored.SecretHash = "", testHash(spec.Secret)
	return spec, stored
}

func TestOIDCC_BackchannelLogoutDiscoveryEndpointVerification(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	op.CheckLogoutDiscovery(t, true, false)
}

func TestOIDCC_BackchannelRPInitiatedLogout(t *testing.T) {
	t.Parallel()
	bc := newSuiteBackchannel(t)
	spec, stored := suiteLogoutClient("oidcc-client-bc", func(c *clientspec.Spec) {
		c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired = bc.URI(), true
	})
	op := newOIDCCOP(t, withSuiteClients(stored))
	s := rpLogoutStart(t, op, op.client(spec))
	params := s.request()
	res := op.EndSession(t, s.b, params, true)
	// Both arrived: the suite waits for the back-channel request and the
	// redirect, in any order; ours comes first.
	reqs := bc.received()
	if len(reqs) != 1 {
		t.Fatalf("the backchannel_logout_uri got %d requests by the time of the redirect, want 1", len(reqs))
	}
	r := reqs[0]
	claims := op.CheckLogoutRequest(t, s.client, r.method, r.contentType, r.form, s.flow.LatestIDToken())
	if claims["sid"] == nil {
		t.Error("the logout token has no sid although backchannel_logout_session_required")
	}
	oidcctest.CheckPostLogoutRedirect(t, res.Redirect, suitePostLogout, params)
	op.CheckLoggedOut(t, s.b, s.client, "openid")
}

func TestOIDCC_FrontchannelLogoutDiscoveryEndpointVerification(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	op.CheckLogoutDiscovery(t, false, true)
}

func TestOIDCC_FrontchannelRPInitiatedLogout(t *testing.T) {
	t.Parallel()
	fcURI := suiteBase + "/frontchannel_logout"
	spec, stored := suiteLogoutClient("oidcc-client-fc", func(c *clientspec.Spec) {
		c.FrontchannelLogoutURI, c.FrontchannelLogoutSessionRequired = fcURI, true
	})
	op := newOIDCCOP(t, withSuiteClients(stored))
	s := rpLogoutStart(t, op, op.client(spec))
	params := s.request()
	res := op.EndSession(t, s.b, params, true)
	if res.Redirect != nil {
		t.Fatalf("redirected to %s before the front-channel iframe could load", res.Redirect.Redacted())
	}
	fp := oidcctest.ParseFrontchannelPage(t, res.Page)
	frame := fp.Frame(t, fcURI)
	op.CheckFrontchannelLogoutRequest(t, frame, fcURI, s.flow.LatestIDToken())
	oidcctest.CheckFramesAllowed(t, res.Page, fp.Frames)
	// The page then continues to the post_logout_redirect_uri (its script
	// after the iframes load; the link without script).
	oidcctest.CheckPostLogoutRedirect(t, fp.Next(suitePostLogout), suitePostLogout, params)
	op.CheckLoggedOut(t, s.b, s.client, "openid")
}
