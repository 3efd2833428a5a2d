package provider_test

// Implicit and hybrid response types, response modes and request objects:
// the behaviours around the conformance modules (oidcc_flows_test.go),
// mostly the refusals.

import (
	"github.com/smallsso/provider/storage"

	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/oidcctest"
)

func TestClientResponseTypesAndRequestObjectSettings(t *testing.T) {
	t.Parallel()
	base := clientspec.Spec{ID: "c", Secret: "s", ClientSettings: storage.ClientSettings{RedirectURIs: []string{"https://app.example.org/cb"}}}
	with := func(fn func(*clientspec.Spec)) clientspec.Spec {
		c := base
		fn(&c)
		return c
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &ecKey.PublicKey, KeyID: "ec", Use: "sig"}}})

	ok, err := with(func(c *clientspec.Spec) {
		c.GrantTypes = []string{"authorization_code", "implicit"}
		c.ResponseTypes = []string{"code", "token id_token", "id_token code"}
	}).Validate()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ok.ResponseTypes, ","); got != "code,id_token token,code id_token" {
		t.Errorf("response types not canonical: %q", got)
	}
	if ok, err := base.Validate(); err != nil || strings.Join(ok.ResponseTypes, ",") != "code" {
		t.Errorf("default response types %v, %v; want code only", ok.ResponseTypes, err)
	}

	for name, tc := range map[string]struct {
		spec clientspec.Spec
		want string
	}{
		"implicit without its grant": {with(func(c *clientspec.Spec) { c.ResponseTypes = []string{"id_token"} }),
			`response type "id_token" needs the implicit grant in grant_types: it returns tokens from the authorization endpoint`},
		"hybrid without the code grant": {with(func(c *clientspec.Spec) {
			c.GrantTypes, c.ResponseTypes = []string{"implicit"}, []string{"code id_token"}
		}), `response type "code id_token" needs the authorization_code grant`},
		"implicit grant unused": {with(func(c *clientspec.Spec) { c.GrantTypes = []string{"authorization_code", "implicit"} }),
			"the implicit grant is used only through response_types"},
		"bare token": {with(func(c *clientspec.Spec) {
			c.GrantTypes, c.ResponseTypes = []string{"implicit"}, []string{"token"}
		}), `response type "token" is not supported`},
		"twice": {with(func(c *clientspec.Spec) {
			c.GrantTypes, c.ResponseTypes = []string{"implicit"}, []string{"id_token", "id_token"}
		}), `listed twice`},
		"implicit needs redirect URIs": {with(func(c *clientspec.Spec) {
			c.RedirectURIs, c.GrantTypes, c.ResponseTypes = nil, []string{"implicit"}, []string{"id_token"}
		}), "redirect_uris is required for the authorization_code and implicit grants"},
		"request_uri over http": {with(func(c *clientspec.Spec) { c.RequestURIs = []string{"http://rp.example.org/r.jwt"} }),
			"must be https"},
		"request_uri relative": {with(func(c *clientspec.Spec) { c.RequestURIs = []string{"/r.jwt"} }), "must be an absolute URL"},
		"request_uri too long": {with(func(c *clientspec.Spec) {
			c.RequestURIs = []string{"https://rp.example.org/" + strings.Repeat("a", 600)}
		}), "longer than 512"},
		"HMAC request objects": {with(func(c *clientspec.Spec) { c.RequestObjectSigningAlg = "HS256" }),
			`request_object_signing_alg "HS256" is not supported`},
		"signed request objects without keys": {with(func(c *clientspec.Spec) { c.RequestObjectSigningAlg = "RS256" }),
			"request_object_signing_alg RS256 needs the client's public keys"},
		"no key for the algorithm": {with(func(c *clientspec.Spec) {
			c.RequestObjectSigningAlg, c.JWKS = "RS256", clientspec.JWKSDoc(ecJWKS)
		}), "jwks has no key usable with RS256"},
	} {
		_, err := tc.spec.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want it to say %q", name, err, tc.want)
		}
	}
	for _, spec := range []clientspec.Spec{
		with(func(c *clientspec.Spec) { c.RequestObjectSigningAlg, c.JWKS = "ES256", clientspec.JWKSDoc(ecJWKS) }),
		with(func(c *clientspec.Spec) { c.RequestObjectSigningAlg = "none" }),
		with(func(c *clientspec.Spec) {
			c.RequestURIs = []string{"https://rp.example.org/r.jwt#v1", "http://127.0.0.1:8080/r.jwt"}
		}),
		with(func(c *clientspec.Spec) {
			c.RequestObjectSigningAlg, c.JWKSURI = "PS256", "https://rp.example.org/jwks"
		}),
	} {
		if _, err := spec.Validate(); err != nil {
			t.Errorf("%+v: %v", spec, err)
		}
	}
}

// authorizeError sends r and returns the error the callback carried.
func authorizeError(t *testing.T, op *flowsOP, r *oidcctest.Request, allowed ...string) *oidcctest.Result {
	t.Helper()
	res := op.Authorize(t, op.Browser(), r, op.User)
	op.CheckError(t, r, res, allowed...)
	return res
}

func TestImplicitAndHybridRules(t *testing.T) {
	t.Parallel()
	op := newFlowsOP(t)
	spa := &oidcctest.Client{ID: "spa-implicit", RedirectURI: suiteBase + "/spa", AuthMethod: "none"}
	op.ts.addClient(t, clientspec.Spec{ID: spa.ID, ClientSettings: storage.ClientSettings{
		Public:        true,
		RedirectURIs:  []string{spa.RedirectURI},
		GrantTypes:    []string{"authorization_code", "implicit"},
		ResponseTypes: []string{"id_token token", "code id_token"},
		Scopes:        []string{"openid", "profile"},
	}})
	oob := &oidcctest.Client{ID: "oob-hybrid", Secret: "oob-hybrid-secret", RedirectURI: "urn:ietf:wg:oauth:2.0:oob"}
	op.ts.addClient(t, clientspec.Spec{ID: oob.ID, Secret: oob.Secret, ClientSettings: storage.ClientSettings{
		RedirectURIs:  []string{oob.RedirectURI},
		GrantTypes:    []string{"authorization_code", "implicit"},
		ResponseTypes: []string{"code", "code id_token"},
	}})

	t.Run("a client gets only the response types it registered", func(t *testing.T) {
		r := op.NewRequest(op.Basic, "openid").With("response_type", "id_token token")
		res := op.Authorize(t, op.Browser(), r, nil)
		// Refused before the response type (and so its mode) is known:
		// the error goes in the query, as for response_type=code.
		if res.Mode != "query" || res.Params.Get("error") != "unsupported_response_type" || res.LoginPages != 0 {
			t.Fatalf("%s %v after %d login pages", res.Mode, res.Params, res.LoginPages)
		}
	})
	t.Run("a public client needs no PKCE without a code, and PKCE with one", func(t *testing.T) {
		r := op.NewRequest(spa, "openid profile").With("response_type", "id_token token")
		f := op.Run(t, op.Browser(), r, op.User, nil)
		if f.Userinfo["name"] == nil {
			t.Errorf("userinfo with the fragment's token: %v", f.Userinfo)
		}
		r = op.NewRequest(spa, "openid").With("response_type", "code id_token")
		res := authorizeError(t, op, r, "invalid_request")
		if !strings.Contains(res.Params.Get("error_description"), "PKCE") || res.LoginPages != 0 {
			t.Errorf("%v", res.Params)
		}
	})
	t.Run("tokens never go in the query", func(t *testing.T) {
		r := op.NewRequest(op.Flows, "openid").With("response_type", "id_token", "response_mode", "query")
		authorizeError(t, op, r, "unsupported_response_mode")
	})
	t.Run("the id_token response type needs the openid scope", func(t *testing.T) {
		r := op.NewRequest(op.Flows, "profile").With("response_type", "code id_token")
		authorizeError(t, op, r, "invalid_scope")
	})
	t.Run("a code in the fragment when asked", func(t *testing.T) {
		op.Run(t, op.Browser(), op.NewRequest(op.Flows, "openid").With("response_mode", "fragment"), op.User, nil)
	})
	t.Run("no state sent, none returned, iss always", func(t *testing.T) {
		r := op.NewRequest(op.Flows, "openid").With("response_type", "code id_token token", "state", "")
		res := op.Authorize(t, op.Browser(), r, op.User)
		if res.Mode != "fragment" || res.Params.Has("state") || res.Params.Get("iss") != op.Issuer || res.Params.Get("id_token") == "" {
			t.Fatalf("%s %v", res.Mode, res.Params)
		}
		r.With("nonce", "")
		res = op.Authorize(t, op.Browser(), r, nil)
		if res.Params.Get("error") != "invalid_request" || res.Params.Has("state") || res.Params.Get("iss") != op.Issuer {
			t.Fatalf("error: %s %v", res.Mode, res.Params)
		}
	})
	t.Run("the out-of-band page shows codes only", func(t *testing.T) {
		r := op.NewRequest(oob, "openid").With("response_type", "code id_token")
		op.CheckErrorPage(t, op.Authorize(t, op.Browser(), r, op.User))
	})
	t.Run("at_hash and c_hash are SHA-256 halves for RS256", func(t *testing.T) {
		f := op.Run(t, op.Browser(), op.NewRequest(op.Flows, "openid").With("response_type", "code id_token token"), op.User, nil)
		tok := f.AuthIDToken
		if tok.Alg != "RS256" || tok.Str("at_hash") != oidcctest.HalfHash("RS256", f.Response.AccessToken) ||
			tok.Str("c_hash") != oidcctest.HalfHash("RS256", f.Response.Code) || len(tok.Str("c_hash")) != 22 {
			t.Fatalf("alg %s at_hash %q c_hash %q", tok.Alg, tok.Str("at_hash"), tok.Str("c_hash"))
		}
	})
}

func TestFormPostPage(t *testing.T) {
	t.Parallel()
	op := newFlowsOP(t)
	r := op.NewRequest(op.Flows, "openid").With("response_type", "code id_token", "response_mode", "form_post")
	b := op.Browser()
	f := op.Run(t, b, r, op.User, nil)
	if f.Result.Mode != "form_post" || f.Result.CallbackURL.String() != op.Flows.RedirectURI {
		t.Fatalf("%s to %s", f.Result.Mode, f.Result.CallbackURL)
	}

	// The page itself, once more with prompt=none: no inline script, the
	// static one allowed by the policy, and a button without JavaScript.
	page, err := b.Get(t.Context(), op.URL(t, op.NewRequest(op.Flows, "openid").With("response_type", "id_token", "response_mode", "form_post", "prompt", "none")))
	if err != nil {
		t.Fatal(err)
	}
	csp := page.Header.Get("Content-Security-Policy")
	if page.Status != http.StatusOK || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("HTTP %d, CSP %q", page.Status, csp)
	}
	if page.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Errorf("headers %v", page.Header)
	}
	body := page.Body
	if strings.Contains(body, "<script>") || strings.Contains(body, "onload") || !strings.Contains(body, `<script src="/static/formpost.js"></script>`) ||
		!strings.Contains(body, `<button type="submit">Continue</button>`) {
		t.Errorf("form_post page:\n%s", body)
	}
	resp, err := http.Get(op.Issuer + "/static/formpost.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(js), `getElementById("form-post")`) || !strings.Contains(body, `id="form-post"`) {
		t.Errorf("formpost.js: HTTP %d %s", resp.StatusCode, js)
	}

	// Errors go by form_post too, with iss, and without a state that was
	// not sent.
	r = op.NewRequest(op.Flows, "openid").With("response_type", "code id_token", "response_mode", "form_post", "prompt", "none", "state", "")
	res := op.Authorize(t, op.Browser(), r, nil)
	if res.Mode != "form_post" || res.Params.Get("error") != "login_required" || res.Params.Get("iss") != op.Issuer || res.Params.Has("state") {
		t.Fatalf("%s %v", res.Mode, res.Params)
	}
	// A response mode nobody knows is refused on a page.
	r = op.NewRequest(op.Flows, "openid").With("response_mode", "jwt")
	op.CheckErrorPage(t, op.Authorize(t, op.Browser(), r, nil))
}

// unsignedObject is an alg none JWT of the given claims.
func unsignedObject(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
}

func signedObject(t *testing.T, key *jose.JSONWebKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}

func TestRequestObjects(t *testing.T) {
	t.Parallel()
	op := newFlowsOP(t)
	objectClaims := func(r *oidcctest.Request) map[string]any {
		m := map[string]any{}
		for k, v := range r.Params {
			m[k] = v[0]
		}
		return m
	}

	t.Run("numbers and objects keep their meaning", func(t *testing.T) {
		b := op.Browser()
		op.Run(t, b, op.NewRequest(op.Flows, "openid"), op.User, nil)
		op.clock.Advance(2 * time.Second)
		r := op.NewRequest(op.Flows, "openid")
		claims := objectClaims(r)
		claims["max_age"] = 1 // a JSON number (OIDC Core §6.1)
		claims["claims"] = map[string]any{"userinfo": map[string]any{"email": map[string]any{"essential": true}}}
		res := op.Authorize(t, b, r.Outer("request", unsignedObject(t, claims), nil), op.User)
		if res.LoginPages != 1 {
			t.Fatalf("max_age 1 as a number: %d login pages, want 1", res.LoginPages)
		}
		f := op.Finish(t, r, res, nil)
		if _, ok := f.IDToken.Num("auth_time"); !ok {
			t.Error("no auth_time though max_age was sent")
		}
	})

	t.Run("signed objects are verified", func(t *testing.T) {
		c := op.Signed
		good := func(r *oidcctest.Request) map[string]any {
			m := objectClaims(r)
			m["iss"], m["aud"], m["exp"] = c.ID, op.Issuer, op.clock.Now().Add(time.Minute).Unix()
			return m
		}
		r := op.NewRequest(c, "openid")
		op.Finish(t, r, op.Authorize(t, op.Browser(), r.Outer("request", signedObject(t, op.SignedKey, good(r)), nil), op.User), nil)

		other := &jose.JSONWebKey{Key: mustRSA(t), KeyID: op.SignedKey.KeyID, Algorithm: "RS256"}
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		for name, obj := range map[string]func(r *oidcctest.Request) string{
			"unsigned, the client registered RS256": func(r *oidcctest.Request) string { return unsignedObject(t, good(r)) },
			"another key":                           func(r *oidcctest.Request) string { return signedObject(t, other, good(r)) },
			"another algorithm": func(r *oidcctest.Request) string {
				return signedObject(t, &jose.JSONWebKey{Key: ec, KeyID: "ec", Algorithm: "ES256"}, good(r))
			},
			"iss of another client": func(r *oidcctest.Request) string {
				m := good(r)
				m["iss"] = "someone-else"
				return signedObject(t, op.SignedKey, m)
			},
			"for another provider": func(r *oidcctest.Request) string {
				m := good(r)
				m["aud"] = "https://other.example.org"
				return signedObject(t, op.SignedKey, m)
			},
			"expired": func(r *oidcctest.Request) string {
				m := good(r)
				m["exp"] = op.clock.Now().Add(-time.Hour).Unix()
				return signedObject(t, op.SignedKey, m)
			},
			"client_id differs": func(r *oidcctest.Request) string {
				m := good(r)
				m["client_id"] = "someone-else"
				return signedObject(t, op.SignedKey, m)
			},
			"nested request_uri": func(r *oidcctest.Request) string {
				m := good(r)
				m["request_uri"] = op.objects.uri()
				return signedObject(t, op.SignedKey, m)
			},
			"not a JWT": func(*oidcctest.Request) string { return "not-a-jwt" },
		} {
			t.Run(name, func(t *testing.T) {
				r := op.NewRequest(c, "openid")
				outer := r.Outer("request", obj(r), nil)
				// The state was only in the object, so none comes back
				// (the suite allows that for invalid_request_object).
				res := op.Authorize(t, op.Browser(), outer, op.User)
				op.CheckError(t, outer, res, "invalid_request_object")
				if res.LoginPages != 0 {
					t.Error("a login page came before the error")
				}
			})
		}
	})

	t.Run("an invalid object with an unregistered outer redirect_uri shows a page", func(t *testing.T) {
		r := op.NewRequest(op.Signed, "openid")
		outer := r.Outer("request", unsignedObject(t, objectClaims(r)), url.Values{"redirect_uri": {suiteBase + "/callback_invalid"}})
		op.CheckErrorPage(t, op.Authorize(t, op.Browser(), outer, op.User))
	})

	t.Run("a response_type that differs from the object's", func(t *testing.T) {
		r := op.NewRequest(op.Flows, "openid")
		outer := r.Outer("request", unsignedObject(t, objectClaims(r)), url.Values{"response_type": {"code id_token"}})
		op.CheckError(t, outer, op.Authorize(t, op.Browser(), outer, op.User), "invalid_request_object")
	})

	t.Run("request and request_uri together", func(t *testing.T) {
		r := op.NewRequest(op.Flows, "openid")
		obj := unsignedObject(t, objectClaims(r))
		outer := r.Outer("request", obj, url.Values{"request_uri": {op.objects.publish(obj)}, "state": {r.State()}})
		op.CheckError(t, outer, op.Authorize(t, op.Browser(), outer, op.User), "invalid_request")
	})

	t.Run("request_uri refusals", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.HandleFunc("/missing", http.NotFound)
		mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(strings.Repeat("a", 70<<10))) })
		fetchedTarget := false
		mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/target", http.StatusFound) })
		mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) { fetchedTarget = true })
		rp := httptest.NewServer(mux)
		defer rp.Close()
		c := &oidcctest.Client{ID: "ro-refusals", Secret: "ro-refusals-secret", RedirectURI: suiteBase + "/callback"}
		op.ts.addClient(t, clientspec.Spec{ID: c.ID, Secret: c.Secret, ClientSettings: storage.ClientSettings{
			RedirectURIs: []string{c.RedirectURI},
			RequestURIs:  []string{rp.URL + "/missing", rp.URL + "/big", rp.URL + "/moved"},
		}})
		for name, uri := range map[string]string{
			"not registered":  op.objects.uri(),
			"404":             rp.URL + "/missing",
			"too large":       rp.URL + "/big",
			"a redirect":      rp.URL + "/moved",
			"unregistered #2": rp.URL + "/target",
		} {
			t.Run(name, func(t *testing.T) {
				r := op.NewRequest(c, "openid")
				outer := r.Outer("request_uri", uri, nil)
				op.CheckError(t, outer, op.Authorize(t, op.Browser(), outer, op.User), "invalid_request_uri")
			})
		}
		if fetchedTarget {
			t.Error("a redirect from a request_uri was followed")
		}
	})

	t.Run("a request_uri with a fragment, ES256 keys from jwks_uri", func(t *testing.T) {
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		key := &jose.JSONWebKey{Key: ec, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"}
		jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
		pub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(jwks) }))
		defer pub.Close()
		c := &oidcctest.Client{ID: "ro-es256", Secret: "ro-es256-secret", RedirectURI: suiteBase + "/callback", Key: key}
		op.ts.addClient(t, clientspec.Spec{ID: c.ID, Secret: c.Secret, ClientSettings: storage.ClientSettings{
			RedirectURIs:            []string{c.RedirectURI},
			JWKSURI:                 pub.URL + "/jwks",
			RequestObjectSigningAlg: "ES256",
			RequestURIs:             []string{op.objects.uri() + "#v1"},
		}})
		r := op.NewRequest(c, "openid")
		op.objects.publish(op.RequestObject(t, r, key))
		outer := r.Outer("request_uri", op.objects.uri()+"#v2", nil)
		op.Finish(t, r, op.Authorize(t, op.Browser(), outer, op.User), nil)
	})

	t.Run("a pushed request_uri cannot come with a request object", func(t *testing.T) {
		r := op.NewRequest(op.Flows, "openid")
		outer := r.Outer("request", unsignedObject(t, objectClaims(r)), url.Values{"request_uri": {"urn:ietf:params:oauth:request_uri:abc"}})
		// The pushed request holds the redirect URI, and this one was never
		// pushed: a page.
		res := op.Authorize(t, op.Browser(), outer, op.User)
		op.CheckErrorPage(t, res)
		if !strings.Contains(res.Page.Body, "invalid_request") {
			t.Errorf("page: %s", oidcctest.PageText(res.Page.Body))
		}
	})
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
