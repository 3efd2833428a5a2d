package provider_test

// The provider set up as the OpenID Foundation conformance suite's
// static-client configuration expects it, for the TestOIDCC_ tests: one
// test per suite module, each driving the real server over HTTP with the
// independent relying party in provider/oidcctest.

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/oidcctest"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
)

// suiteBase stands for the suite's per-test base URL; the suite's static
// clients register <base>/callback, /post_logout_redirect,
// /backchannel_logout and /frontchannel_logout. The browser stops at the
// redirect, so nothing needs to listen there.
const suiteBase = "https://suite.example.test/test/a/smallsso"

// buffy is the conformance user: the suite's default login_hint is
// buffy@<issuer host>, and the scope modules want every claim we hold.
const (
	buffyName = "buffy"
	buffyPass = "conformance suite password"
)

// oidccOP is the provider under test plus the suite's configuration: the
// client (client_secret_basic), the client_secret_post client, a second
// client for oidcc-refresh-token, and the user.
type oidccOP struct {
	*oidcctest.OP
	ts    *testServer
	clock *testClock
	// Basic is the suite's "client", Post its "client_secret_post" block,
	// Client2 its "client2".
	Basic, Post, Client2 *oidcctest.Client
	User                 *oidcctest.Login
	UserID               string
}

// oidccOptions adjusts the fixture before the provider starts.
type oidccOptions struct {
	clients []clientspec.Spec
	config  []func(*provider.Config)
}

type oidccOption func(*oidccOptions)

// withSuiteClients registers more clients (registration modules, other
// response types, logout URIs).
func withSuiteClients(specs ...clientspec.Spec) oidccOption {
	return func(o *oidccOptions) { o.clients = append(o.clients, specs...) }
}

// withSuiteConfig changes the provider's configuration.
func withSuiteConfig(fn func(*provider.Config)) oidccOption {
	return func(o *oidccOptions) { o.config = append(o.config, fn) }
}

// suiteClientSpec is a confidential client registered with the suite's
// URIs for every scope the suite asks for.
func suiteClientSpec(id, secret, authMethod string) clientspec.Spec {
	return clientspec.Spec{
		ID: id, Secret: secret, ClientSettings: storage.ClientSettings{
			Name:                    "Conformance " + id,
			RedirectURIs:            []string{suiteBase + "/callback"},
			PostLogoutRedirectURIs:  []string{suiteBase + "/post_logout_redirect"},
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			Scopes:                  []string{"openid", "profile", "email", "address", "phone", "groups", "offline_access"},
			TokenEndpointAuthMethod: authMethod,
		},
	}
}

// suiteClient is the harness's view of a spec registered at the provider.
func suiteClient(spec clientspec.Spec, secret string) *oidcctest.Client {
	return &oidcctest.Client{
		ID: spec.ID, Secret: secret, RedirectURI: spec.RedirectURIs[0],
		AuthMethod: spec.TokenEndpointAuthMethod, IDTokenAlg: spec.IDTokenSignedResponseAlg,
	}
}

func newOIDCCOP(t testing.TB, opts ...oidccOption) *oidccOP {
	t.Helper()
	var o oidccOptions
	for _, fn := range opts {
		fn(&o)
	}
	clock := &testClock{}
	ts := newTestServerDeps(t, func(d *provider.Deps) { d.Now = clock.Now }, o.config...)
	op := &oidccOP{ts: ts, clock: clock}
	basic := suiteClientSpec("oidcc-client", "oidcc-client-secret", "client_secret_basic")
	post := suiteClientSpec("oidcc-client-post", "oidcc-client-post-secret", "client_secret_post")
	client2 := suiteClientSpec("oidcc-client2", "oidcc-client2-secret", "client_secret_basic")
	for _, spec := range []clientspec.Spec{basic, post, client2} {
		spec.SecretHash, spec.Secret = testHash(spec.Secret), ""
		ts.addClient(t, spec)
	}
	for _, spec := range o.clients {
		ts.addClient(t, spec)
	}
	op.Basic, op.Post, op.Client2 = suiteClient(basic, basic.Secret), suiteClient(post, post.Secret), suiteClient(client2, client2.Secret)

	now := clock.Now().UTC()
	u := storage.User{
		ID: rand.Text(), Username: buffyName, PasswordHash: testHash(buffyPass),
		Profile: storage.Profile{
			Name:                "Buffy Summers",
			GivenName:           "Buffy",
			FamilyName:          "Summers",
			Email:               "buffy@example.org",
			EmailVerified:       true,
			PhoneNumber:         "+1 555 0100",
			PhoneNumberVerified: true,
			Address:             &storage.Address{StreetAddress: "1630 Revello Drive", Locality: "Sunnydale", Region: "CA", PostalCode: "95037", Country: "US"},
			Groups:              []string{"slayers"},
		},
		CreatedAt: now, UpdatedAt: now,
	}
	if err := ts.Store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	op.User, op.UserID = &oidcctest.Login{Username: buffyName, Password: buffyPass}, u.ID
	op.OP = oidcctest.Discover(t, ts.URL)
	op.OP.Now = clock.Now
	return op
}

// Browser is a fresh browser: no cookies, no session.
func (op *oidccOP) Browser() *providertest.Browser { return providertest.NewBrowser(op.Issuer) }

// client is the harness's view of a client added with withSuiteClients.
func (op *oidccOP) client(spec clientspec.Spec) *oidcctest.Client {
	return suiteClient(spec, spec.Secret)
}
