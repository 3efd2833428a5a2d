package provider_test

// Attacks a review tried on passkeys, kept as regression tests.

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/smallsso/provider/provider/providertest"
)

// A synced passkey keeps no counter (0): the same POST /login/passkey
// sent again (same state, same assertion: the back button's resubmit
// after the person signed out) must not sign in again.
func TestPasskeyAssertionAnsweredOnce(t *testing.T) {
	t.Parallel()
	s := newPasskeyServer(t)
	b := s.signedIn(t)
	k := newSoftKey(t, "localhost", s.URL)
	k.synced = true
	if page := s.register(t, b, k, "Sync"); page.Status != http.StatusOK {
		t.Fatalf("register: %d", page.Status)
	}
	g := providertest.NewBrowser(s.URL)
	interaction := s.loginPage(t, g, s.authURL())
	opts, state := s.loginOptions(t, g, interaction)
	form := url.Values{"csrf": {csrfOf(t, g, s.URL)}, "interaction": {interaction}, "state": {state}, "credential": {k.assert(t, opts)}}
	post(t, g, s.URL+"/login/passkey", form)
	sess, ok, _ := sessionOf(t, s, g)
	if !ok {
		t.Fatal("first sign-in failed")
	}
	if err := s.Store.DeleteBrowserSession(context.Background(), sess.ID); err != nil { // signed out
		t.Fatal(err)
	}
	p2 := post(t, g, s.URL+"/login/passkey", form)
	if _, ok, _ := sessionOf(t, s, g); ok {
		t.Fatalf("replayed assertion signed in again: HTTP %d", p2.Status)
	}
}

// The enrolment page of a step-up (acr_values=mfa for a password-only
// session) belongs to that session: once it is gone (signed out, the page
// left open on a shared computer), its state must not put the next
// person's passkey or app on alice's account.
func TestStepUpEnrolmentEndsWithItsSession(t *testing.T) {
	t.Parallel()
	s := newPasskeyServer(t)
	b := s.signedIn(t)
	page, err := b.Get(context.Background(), s.authURL("acr_values", "mfa"))
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("step-up: %v %d", err, page.Status)
	}
	i := strings.Index(page.Body, `name="interaction" value="`)
	rest := page.Body[i+len(`name="interaction" value="`):]
	interaction := rest[:strings.Index(rest, `"`)]
	sess, _, _ := sessionOf(t, s, b)
	if err := s.Store.DeleteBrowserSession(context.Background(), sess.ID); err != nil {
		t.Fatal(err)
	}
	csrf := csrfOf(t, b, s.URL)
	status, v := postJSON(t, b, s.URL+"/login/passkey/enrol/options", url.Values{"csrf": {csrf}, "interaction": {interaction}})
	if status != http.StatusBadRequest {
		t.Errorf("passkey enrolment options after the session ended: HTTP %d, want 400", status)
	}
	if page := post(t, b, s.URL+"/login/enrol", url.Values{"csrf": {csrf}, "interaction": {interaction}, "key": {"x"}, "code": {"123456"}}); page.Status != http.StatusBadRequest {
		t.Errorf("app enrolment after the session ended: HTTP %d, want 400", page.Status)
	}
	if status != http.StatusOK {
		return
	}
	k := newSoftKey(t, "localhost", s.URL)
	post(t, b, s.URL+"/login/passkey/enrol", url.Values{"csrf": {csrf}, "interaction": {interaction}, "state": {v["state"].(string)}, "credential": {k.create(t, v["options"].(map[string]any))}, "name": {"mallory"}})
	if f, err := s.Store.GetFactors(context.Background(), s.alice.ID); err == nil && len(f.Passkeys) > 0 {
		t.Fatal("a passkey was added to alice's account after her step-up session ended")
	}
}

// User verification is required by the server, not only asked for in
// the options: an answer without it is refused.
func TestPasskeyWithoutUserVerificationRefused(t *testing.T) {
	t.Parallel()
	s := newPasskeyServer(t)
	b := s.signedIn(t)
	k := newSoftKey(t, "localhost", s.URL)
	opts, state := s.registerOptions(t, b)
	page := post(t, b, s.URL+"/account/passkeys", url.Values{"csrf": {csrfOf(t, b, s.URL)}, "state": {state}, "credential": {flipUV(t, k.create(t, opts))}, "name": {"x"}})
	if page.Status != http.StatusBadRequest {
		t.Errorf("registration without UV: %d", page.Status)
	}
	s.register(t, b, k, "ok")
	g := providertest.NewBrowser(s.URL)
	interaction := s.loginPage(t, g, s.authURL())
	opts, state = s.loginOptions(t, g, interaction)
	page = post(t, g, s.URL+"/login/passkey", url.Values{"csrf": {csrfOf(t, g, s.URL)}, "interaction": {interaction}, "state": {state}, "credential": {k.getNoUV(t, opts)}})
	if page.Status != http.StatusUnauthorized {
		t.Errorf("sign-in without UV: %d", page.Status)
	}
}

func (k *softKey) getNoUV(t *testing.T, options map[string]any) string {
	t.Helper()
	k.counter++
	pk := options["publicKey"].(map[string]any)
	cd := clientData("webauthn.get", pk["challenge"].(string), k.origin)
	ad := k.authData(nil)
	ad[32] &^= 0x04
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), ad...), h[:]...))
	sig, _ := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	b, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(k.user)},
		"clientExtensionResults": map[string]any{},
	})
	return string(b)
}

func flipUV(t *testing.T, cred string) string {
	var m map[string]any
	json.Unmarshal([]byte(cred), &m)
	resp := m["response"].(map[string]any)
	raw, _ := b64.DecodeString(resp["attestationObject"].(string))
	var att map[string]any
	if err := cbor.Unmarshal(raw, &att); err != nil {
		t.Fatal(err)
	}
	ad := att["authData"].([]byte)
	ad[32] &^= 0x04
	att["authData"] = ad
	out, _ := cbor.Marshal(att)
	resp["attestationObject"] = b64.EncodeToString(out)
	b, _ := json.Marshal(m)
	return string(b)
}

// A passkey signs in on its own and outlives a password change, so adding
// one takes the password: a session alone (a cookie taken from an open
// browser) is not enough.
func TestPasskeyRegistrationTakesThePassword(t *testing.T) {
	t.Parallel()
	s := newPasskeyServer(t)
	b := s.signedIn(t)
	k := newSoftKey(t, "localhost", s.URL)
	for _, tc := range []struct {
		password string
		status   int
	}{{"", http.StatusBadRequest}, {"wrong password", http.StatusUnauthorized}} {
		opts, state := s.registerOptions(t, b)
		page := post(t, b, s.URL+"/account/passkeys", url.Values{"csrf": {csrfOf(t, b, s.URL)}, "state": {state}, "credential": {k.create(t, opts)}, "name": {"stolen"}, "password": {tc.password}})
		if page.Status != tc.status {
			t.Errorf("password %q: HTTP %d, want %d", tc.password, page.Status, tc.status)
		}
		if f, err := s.Store.GetFactors(context.Background(), s.alice.ID); err == nil && len(f.Passkeys) > 0 {
			t.Fatalf("password %q: a passkey was stored", tc.password)
		}
	}
	if page := s.register(t, b, k, "mine"); page.Status != http.StatusOK || len(s.factors(t).Passkeys) != 1 {
		t.Fatalf("with the password: HTTP %d", page.Status)
	}
}
