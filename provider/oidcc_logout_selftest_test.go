package provider_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/smallsso/provider/provider/oidcctest"
	"github.com/smallsso/provider/provider/providertest"
)

// The logout checks of the harness fail what the suite fails.
func TestOIDCCHarnessCatchesLogoutFaults(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	s := rpLogoutStart(t, op, nil)
	idt := s.flow.LatestIDToken()
	key, err := op.ts.Keys.Active("RS256")
	if err != nil {
		t.Fatal(err)
	}
	// logoutToken signs claims with the provider's key: a well-formed
	// logout token, then one thing broken per case.
	logoutToken := func(edit func(map[string]any)) string {
		now := time.Now().Unix()
		c := map[string]any{
			"iss": op.Issuer, "aud": s.client.ID, "iat": now, "exp": now + 120, "jti": "j1",
			"sub": idt.Str("sub"), "sid": idt.Str("sid"),
			"events": map[string]any{oidcctest.BackchannelLogoutEvent: map[string]any{}},
		}
		if edit != nil {
			edit(c)
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key.Signer, KeyID: key.ID}},
			(&jose.SignerOptions{}).WithType("logout+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(c)
		jws, err := signer.Sign(body)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jws.CompactSerialize()
		return out
	}
	checkToken := func(tb testing.TB, form url.Values) {
		op.CheckLogoutRequest(tb, s.client, http.MethodPost, "application/x-www-form-urlencoded", form, idt)
	}
	if msg := failure(func(tb testing.TB) { checkToken(tb, url.Values{"logout_token": {logoutToken(nil)}}) }); msg != "" {
		t.Fatalf("a good logout token fails: %s", msg)
	}
	params := url.Values{"state": {"st"}}
	page := &providertest.Page{URL: mustURL(t, op.Issuer+"/logout"), Status: 200, Header: http.Header{
		"Content-Security-Policy": {"default-src 'none'; frame-src https://other.example"},
	}}

	cases := map[string]struct {
		want string
		fn   func(tb testing.TB)
	}{
		"signature": {"logout_token does not verify", func(tb testing.TB) {
			parts := strings.Split(logoutToken(nil), ".")
			checkToken(tb, url.Values{"logout_token": {parts[0] + "." + parts[1][:len(parts[1])-2] + "AA." + parts[2]}})
		}},
		"nonce": {"CheckLogoutTokenNoNonce", func(tb testing.TB) {
			checkToken(tb, url.Values{"logout_token": {logoutToken(func(c map[string]any) { c["nonce"] = "n" })}})
		}},
		"two events": {"ValidateLogoutTokenClaims", func(tb testing.TB) {
			checkToken(tb, url.Values{"logout_token": {logoutToken(func(c map[string]any) {
				c["events"] = map[string]any{oidcctest.BackchannelLogoutEvent: map[string]any{}, "other": map[string]any{}}
			})}})
		}},
		"event not empty": {"ValidateLogoutTokenClaims", func(tb testing.TB) {
			checkToken(tb, url.Values{"logout_token": {logoutToken(func(c map[string]any) {
				c["events"] = map[string]any{oidcctest.BackchannelLogoutEvent: map[string]any{"x": 1}}
			})}})
		}},
		"other audience": {"ValidateLogoutTokenClaims", func(tb testing.TB) {
			checkToken(tb, url.Values{"logout_token": {logoutToken(func(c map[string]any) { c["aud"] = "someone" })}})
		}},
		"sid of another session": {"CheckIdTokenSidMatchesLogoutToken", func(tb testing.TB) {
			checkToken(tb, url.Values{"logout_token": {logoutToken(func(c map[string]any) { c["sid"] = "other" })}})
		}},
		"neither sub nor sid": {"CheckLogoutTokenHasSubOrSid", func(tb testing.TB) {
			checkToken(tb, url.Values{"logout_token": {logoutToken(func(c map[string]any) { delete(c, "sub"); delete(c, "sid") })}})
		}},
		"extra parameter": {"CheckForUnexpectedParametersInBackchannelLogoutRequest", func(tb testing.TB) {
			checkToken(tb, url.Values{"logout_token": {logoutToken(nil)}, "extra": {"1"}})
		}},
		"state lost": {"CheckPostLogoutState", func(tb testing.TB) {
			oidcctest.CheckPostLogoutRedirect(tb, mustURL(t, suitePostLogout), suitePostLogout, params)
		}},
		"state not sent but returned": {"CheckPostLogoutState", func(tb testing.TB) {
			oidcctest.CheckPostLogoutRedirect(tb, mustURL(t, suitePostLogout+"?state=x"), suitePostLogout, url.Values{})
		}},
		"extra redirect parameter": {"CheckForUnexpectedParametersInPostLogoutRedirect", func(tb testing.TB) {
			oidcctest.CheckPostLogoutRedirect(tb, mustURL(t, suitePostLogout+"?state=st&iss=x"), suitePostLogout, params)
		}},
		"redirected when it must not": {"must not use an unverified", func(tb testing.TB) {
			oidcctest.CheckNoPostLogoutRedirect(tb, &oidcctest.LogoutResult{Redirect: mustURL(t, suitePostLogout)}, suitePostLogout)
		}},
		"front-channel iss": {"ValidateFrontchannelLogoutIss", func(tb testing.TB) {
			op.CheckFrontchannelLogoutRequest(tb, mustURL(t, suiteBase+"/frontchannel_logout?iss=x&sid="+idt.Str("sid")), suiteBase+"/frontchannel_logout", idt)
		}},
		"front-channel sid": {"CheckIdTokenSidMatchesFrontChannelLogoutRequest", func(tb testing.TB) {
			op.CheckFrontchannelLogoutRequest(tb, mustURL(t, suiteBase+"/frontchannel_logout?iss="+url.QueryEscape(op.Issuer)), suiteBase+"/frontchannel_logout", idt)
		}},
		"iframe blocked by CSP": {"Content-Security-Policy blocks", func(tb testing.TB) {
			oidcctest.CheckFramesAllowed(tb, page, []*url.URL{mustURL(t, suiteBase+"/frontchannel_logout")})
		}},
		"discovery without back-channel": {"backchannel_logout_session_supported", func(tb testing.TB) {
			other := *op.OP
			other.Discovery = maps.Clone(op.Discovery)
			delete(other.Discovery, "backchannel_logout_session_supported")
			other.CheckLogoutDiscovery(tb, true, false)
		}},
		"discovery without end_session_endpoint": {"CheckDiscEndSessionEndpoint", func(tb testing.TB) {
			other := *op.OP
			other.Discovery = maps.Clone(op.Discovery)
			delete(other.Discovery, "end_session_endpoint")
			other.CheckLogoutDiscovery(tb, false, false)
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			msg := failure(c.fn)
			if msg == "" {
				t.Fatalf("the harness accepted it")
			}
			if !strings.Contains(msg, c.want) {
				t.Fatalf("failed for another reason: %s", msg)
			}
		})
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
