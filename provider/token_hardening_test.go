package provider_test

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"github.com/smallsso/provider/provider"
)

// Issue 11 item 5: a client may introspect the tokens issued to it and
// those whose audience names it; only a client the operator declared with
// `introspect: any` may introspect every token. Anyone else hears exactly
// what an unknown token gets: {"active": false}.
func TestIntrospectionScoping(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration("initial-token"))
	owner := ts.addClient(t, provider.ClientSpec{ID: "owner", Secret: "owner-secret-0123456789",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"api"}, Audience: []string{"rs-api"}})
	rs := ts.addClient(t, provider.ClientSpec{ID: "rs-api", Secret: "rs-secret-0123456789", GrantTypes: []string{"client_credentials"}})
	foreign := ts.addClient(t, provider.ClientSpec{ID: "foreign", Secret: "foreign-secret-0123456789", GrantTypes: []string{"client_credentials"}})
	auditor := ts.addClient(t, provider.ClientSpec{ID: "auditor", Secret: "auditor-secret-0123456789",
		GrantTypes: []string{"client_credentials"}, Introspect: provider.IntrospectAny})

	token := func(form url.Values) string {
		t.Helper()
		form.Set("grant_type", "client_credentials")
		status, _, body := postForm(t, ts.URL+"/token", form, "owner", owner)
		if status != http.StatusOK {
			t.Fatalf("token: HTTP %d %v", status, body)
		}
		return body["access_token"].(string)
	}
	forRS := token(url.Values{"scope": {"api"}, "audience": {"rs-api"}})
	noAudience := token(url.Values{"scope": {"api"}})

	// A client registered dynamically cannot make itself an auditor: the
	// field is not registration metadata, on registration or on update.
	reg := ts.register(t, map[string]any{"redirect_uris": []string{webRedirect}, "introspect": "any"}, "initial-token")
	if _, ok := reg.Body["introspect"]; ok {
		t.Errorf("registration response claims introspect: %v", reg.Body)
	}
	upd := map[string]any{"client_id": reg.ID, "client_secret": reg.Secret, "redirect_uris": []string{webRedirect}, "introspect": "any"}
	if status, _, body := sendJSON(t, http.MethodPut, reg.URI, upd, reg.Token); status != http.StatusOK {
		t.Fatalf("registration update: HTTP %d %v", status, body)
	}

	inactive := map[string]any{"active": false}
	for _, c := range []struct {
		name, client, secret, token string
		active                      bool
	}{
		{"owner, audience token", "owner", owner, forRS, true},
		{"owner, token without audience", "owner", owner, noAudience, true},
		{"audience client", "rs-api", rs, forRS, true},
		{"audience client, token not for it", "rs-api", rs, noAudience, false},
		{"foreign client", "foreign", foreign, forRS, false},
		{"foreign client, token without audience", "foreign", foreign, noAudience, false},
		{"introspect: any", "auditor", auditor, forRS, true},
		{"introspect: any, token without audience", "auditor", auditor, noAudience, true},
		{"registered client asking for introspect: any", reg.ID, reg.Secret, forRS, false},
	} {
		status, _, body := postForm(t, ts.URL+"/introspect", url.Values{"token": {c.token}}, c.client, c.secret)
		if status != http.StatusOK {
			t.Errorf("%s: HTTP %d %v", c.name, status, body)
			continue
		}
		if !c.active {
			// Indistinguishable from an unknown token.
			_, _, unknown := postForm(t, ts.URL+"/introspect", url.Values{"token": {"no-such-token"}}, c.client, c.secret)
			if !reflect.DeepEqual(body, inactive) || !reflect.DeepEqual(unknown, inactive) {
				t.Errorf("%s: %v (unknown token: %v), want %v", c.name, body, unknown, inactive)
			}
			continue
		}
		if body["active"] != true || body["client_id"] != "owner" {
			t.Errorf("%s: %v, want active, client_id owner", c.name, body)
		}
	}
}
