package provider_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/providertest"
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

// Issue 11 item 6: one code exchanged by many requests at once has one
// winner; every other request is a replay and gets invalid_grant (never a
// 5xx), and the replay revokes what the code issued, the winner's tokens
// included (RFC 6749 §4.1.2), whichever request gets there first.
func TestCodeExchangeRace(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "profile")
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	code := f.code(t, ts.URL)

	const n = 8
	type answer struct {
		status int
		body   map[string]any
		err    error
	}
	answers := make([]answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {f.verifier}}
			req, err := http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader(form.Encode()))
			if err != nil {
				answers[i].err = err
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("web", "web-secret")
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answers[i].err = err
				return
			}
			defer resp.Body.Close()
			answers[i].status = resp.StatusCode
			answers[i].err = json.NewDecoder(resp.Body).Decode(&answers[i].body)
		}()
	}
	close(start)
	wg.Wait()

	var winner map[string]any
	for i, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("exchange %d: %v", i, a.err)
		case a.status == http.StatusOK && winner == nil:
			winner = a.body
		case a.status == http.StatusBadRequest && a.body["error"] == "invalid_grant":
		default:
			t.Errorf("exchange %d: HTTP %d %v, want one 200 and the rest 400 invalid_grant", i, a.status, a.body)
		}
	}
	if winner == nil {
		t.Fatal("no exchange succeeded")
	}
	if info := ts.introspect(t, winner["access_token"].(string)); info["active"] != false {
		t.Errorf("winner's access token after the replay: %v, want inactive", info)
	}
	if status, body := ts.refresh(t, winner["refresh_token"].(string)); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("winner's refresh token after the replay: HTTP %d %v, want 400 invalid_grant", status, body)
	}
	// A later replay is refused the same way.
	status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {webRedirect}, "code_verifier": {f.verifier}}, "web", "web-secret")
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("later replay: HTTP %d %v", status, body)
	}
}
