package provider_test

// Passkeys over HTTP, with a software authenticator (softKey) standing in
// for the browser's WebAuthn API: the options the server hands out, the
// sealed ceremony state (expired, from another browser, tampered,
// another ceremony's: all refused), registration, signing in with a
// passkey alone, the sign counter (a clone warning refuses, and two uses
// racing with the same count cannot both pass), and removal.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
)

var b64 = base64.RawURLEncoding

// softKey is a passkey held in memory: it answers the server's options
// as an authenticator with user verification would, through a browser at
// origin.
type softKey struct {
	key     *ecdsa.PrivateKey
	id      []byte
	user    []byte
	rpID    string
	origin  string
	counter uint32
	synced  bool // the backup-eligible flag
}

func newSoftKey(t *testing.T, rpID, origin string) *softKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &softKey{key: k, id: id, rpID: rpID, origin: origin}
}

func (k *softKey) authData(attested []byte) []byte {
	rp := sha256.Sum256([]byte(k.rpID))
	flags := byte(0x01 | 0x04) // user present, user verified
	if k.synced {
		flags |= 0x08
	}
	if attested != nil {
		flags |= 0x40
	}
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.counter)
	return append(out, attested...)
}

func clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// create answers creation options (the JSON the server sent) with a
// "none" attestation.
func (k *softKey) create(t *testing.T, options map[string]any) string {
	t.Helper()
	pk := options["publicKey"].(map[string]any)
	k.user, _ = b64.DecodeString(pk["user"].(map[string]any)["id"].(string))
	x, y := k.key.PublicKey.X.FillBytes(make([]byte, 32)), k.key.PublicKey.Y.FillBytes(make([]byte, 32))
	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	if err != nil {
		t.Fatal(err)
	}
	attested := make([]byte, 16) // AAGUID: none
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(k.id)))
	attested = append(append(attested, k.id...), cose...)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(attested)})
	if err != nil {
		t.Fatal(err)
	}
	cd := clientData("webauthn.create", pk["challenge"].(string), k.origin)
	b, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response":               map[string]any{"clientDataJSON": b64.EncodeToString(cd), "attestationObject": b64.EncodeToString(att), "transports": []string{"internal"}},
		"clientExtensionResults": map[string]any{},
	})
	return string(b)
}

// get answers request options with an assertion, its counter one up.
func (k *softKey) get(t *testing.T, options map[string]any) string {
	t.Helper()
	k.counter++
	return k.assert(t, options)
}

// assert signs with the counter as it is.
func (k *softKey) assert(t *testing.T, options map[string]any) string {
	t.Helper()
	pk := options["publicKey"].(map[string]any)
	cd := clientData("webauthn.get", pk["challenge"].(string), k.origin)
	ad := k.authData(nil)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(k.user),
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(b)
}

// passkeyServer is a provider on localhost (WebAuthn needs a domain
// name) on a clock the test moves.
type passkeyServer struct {
	*testServer
	clock *testClock
}

func newPasskeyServer(t *testing.T) *passkeyServer {
	t.Helper()
	clock := &testClock{}
	issuer := ""
	ts := newTestServerDeps(t, func(d *provider.Deps) { d.Now = clock.Now }, func(c *provider.Config) {
		c.Issuer = strings.Replace(c.Issuer, "127.0.0.1", "localhost", 1)
		issuer = c.Issuer
	})
	ts.URL = issuer
	return &passkeyServer{testServer: ts, clock: clock}
}

// signedIn is a browser signed in on the account page as alice.
func (s *passkeyServer) signedIn(t *testing.T) *providertest.Browser {
	t.Helper()
	b := providertest.NewBrowser(s.URL)
	page, err := b.Get(context.Background(), s.URL+"/account")
	if err != nil {
		t.Fatal(err)
	}
	form, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	page, err = b.Submit(context.Background(), page, form, url.Values{"username": {"alice"}, "password": {alicePass}})
	if err != nil || page.Status != http.StatusOK || !strings.Contains(page.Body, "Your account") {
		t.Fatalf("sign in on the account page: %v %+v", err, page)
	}
	return b
}

func csrfOf(t *testing.T, b *providertest.Browser, issuer string) string {
	t.Helper()
	u, _ := url.Parse(issuer)
	for _, c := range b.HTTP.Jar.Cookies(u) {
		if c.Name == "csrf" {
			return c.Value
		}
	}
	t.Fatal("no csrf cookie")
	return ""
}

// postJSON posts a form and decodes the JSON answer.
func postJSON(t *testing.T, b *providertest.Browser, endpoint string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("POST %s: HTTP %d, not JSON: %q", endpoint, resp.StatusCode, body)
	}
	return resp.StatusCode, v
}

func post(t *testing.T, b *providertest.Browser, endpoint string, form url.Values) *providertest.Page {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	page, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

// registerOptions asks for registration options as the account page's
// script does.
func (s *passkeyServer) registerOptions(t *testing.T, b *providertest.Browser) (map[string]any, string) {
	t.Helper()
	status, v := postJSON(t, b, s.URL+"/account/passkeys/options", url.Values{"csrf": {csrfOf(t, b, s.URL)}})
	if status != http.StatusOK {
		t.Fatalf("registration options: HTTP %d %v", status, v)
	}
	return v["options"].(map[string]any), v["state"].(string)
}

// register adds k as a passkey named name; it returns the page.
func (s *passkeyServer) register(t *testing.T, b *providertest.Browser, k *softKey, name string) *providertest.Page {
	t.Helper()
	opts, state := s.registerOptions(t, b)
	return post(t, b, s.URL+"/account/passkeys", url.Values{"csrf": {csrfOf(t, b, s.URL)}, "state": {state}, "credential": {k.create(t, opts)}, "name": {name}, "password": {alicePass}})
}

func (s *passkeyServer) factors(t *testing.T) storage.Factors {
	t.Helper()
	f, err := s.Store.GetFactors(context.Background(), s.alice.ID)
	if err != nil {
		t.Fatalf("alice's factors: %v", err)
	}
	return f
}

// loginPage opens an authorization request's sign-in page and returns
// its sealed interaction.
func (s *passkeyServer) loginPage(t *testing.T, b *providertest.Browser, authURL string) string {
	t.Helper()
	page, err := b.Get(context.Background(), authURL)
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("sign-in page: %v %+v", err, page)
	}
	if !strings.Contains(page.Body, `id="passkey-form"`) {
		t.Fatal("the sign-in page offers no passkey")
	}
	form, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	return form.Values.Get("interaction")
}

func (s *passkeyServer) loginOptions(t *testing.T, b *providertest.Browser, interaction string) (map[string]any, string) {
	t.Helper()
	status, v := postJSON(t, b, s.URL+"/login/passkey/options", url.Values{"csrf": {csrfOf(t, b, s.URL)}, "interaction": {interaction}})
	if status != http.StatusOK {
		t.Fatalf("sign-in options: HTTP %d %v", status, v)
	}
	return v["options"].(map[string]any), v["state"].(string)
}

func (s *passkeyServer) authURL(extra ...string) string {
	v := url.Values{"client_id": {"web"}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {webRedirect},
		"state": {randomString()}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return s.URL + "/authorize?" + v.Encode()
}

func TestPasskeyOptionsJSON(t *testing.T) {
	t.Parallel()
	s := newPasskeyServer(t)
	b := s.signedIn(t)
	opts, state := s.registerOptions(t, b)
	pk := opts["publicKey"].(map[string]any)
	rp, user, sel := pk["rp"].(map[string]any), pk["user"].(map[string]any), pk["authenticatorSelection"].(map[string]any)
	if rp["id"] != "localhost" || rp["name"] != "Test Org" {
		t.Errorf("rp %v, want id localhost and the org's name", rp)
	}
	if user["id"] != b64.EncodeToString([]byte(s.alice.ID)) || user["name"] != "alice" || user["displayName"] != "Alice Liddell" {
		t.Errorf("user %v, want alice's ID bytes as the handle", user)
	}
	if sel["residentKey"] != "required" || sel["requireResidentKey"] != true || sel["userVerification"] != "required" {
		t.Errorf("authenticatorSelection %v, want a discoverable credential with user verification", sel)
	}
	if c, _ := b64.DecodeString(pk["challenge"].(string)); len(c) < 16 {
		t.Errorf("challenge %q is short", pk["challenge"])
	}
	if pk["excludeCredentials"] != nil || state == "" {
		t.Errorf("excludeCredentials %v with no passkey yet; state %q", pk["excludeCredentials"], state)
	}

	k := newSoftKey(t, "localhost", s.URL)
	if page := s.register(t, b, k, "Phone"); page.Status != http.StatusOK || !strings.Contains(page.Body, "Your recovery codes") {
		t.Fatalf("first passkey: HTTP %d, want the recovery codes page", page.Status)
	}
	opts, _ = s.registerOptions(t, b)
	excl, _ := opts["publicKey"].(map[string]any)["excludeCredentials"].([]any)
	if len(excl) != 1 || excl[0].(map[string]any)["id"] != b64.EncodeToString(k.id) {
		t.Errorf("excludeCredentials %v, want the registered passkey", excl)
	}

	// Sign-in options: discoverable (no list of credentials), user
	// verification required.
	g := providertest.NewBrowser(s.URL)
	opts, _ = s.loginOptions(t, g, s.loginPage(t, g, s.authURL()))
	pk = opts["publicKey"].(map[string]any)
	if pk["rpId"] != "localhost" || pk["userVerification"] != "required" || pk["allowCredentials"] != nil {
		t.Errorf("sign-in options %v, want rpId localhost, userVerification required, no allowCredentials", pk)
	}
	// Without the page's interaction or CSRF token, no options.
	if status, v := postJSON(t, g, s.URL+"/login/passkey/options", url.Values{"csrf": {csrfOf(t, g, s.URL)}, "interaction": {"x.y"}}); status != http.StatusBadRequest || v["error"] == "" {
		t.Errorf("options without an interaction: HTTP %d %v", status, v)
	}
	if status, v := postJSON(t, g, s.URL+"/account/passkeys/options", url.Values{"csrf": {csrfOf(t, g, s.URL)}}); status != http.StatusUnauthorized || v["error"] != "You were signed out. Reload the page and sign in again." {
		t.Errorf("registration options signed out: HTTP %d %v", status, v)
	}
}

func TestPasskeyCeremonyStateRefused(t *testing.T) {
	t.Parallel()
	s := newPasskeyServer(t)
	b := s.signedIn(t)
	other := s.signedIn(t) // alice in another browser: another CSRF token
	k := newSoftKey(t, "localhost", s.URL)
	refused := func(name string, b *providertest.Browser, state, credential string) {
		t.Helper()
		page := post(t, b, s.URL+"/account/passkeys", url.Values{"csrf": {csrfOf(t, b, s.URL)}, "state": {state}, "credential": {credential}, "name": {"x"}, "password": {alicePass}})
		if page.Status != http.StatusBadRequest || !strings.Contains(page.Body, "Too much time passed, or the page was open in another window.") {
			t.Errorf("%s: HTTP %d, want 400 and the passkeys section saying to try again", name, page.Status)
		}
		if f, err := s.Store.GetFactors(context.Background(), s.alice.ID); err == nil && len(f.Passkeys) > 0 {
			t.Fatalf("%s: a passkey was stored", name)
		}
	}

	opts, state := s.registerOptions(t, b)
	cred := k.create(t, opts)
	raw, _ := b64.DecodeString(state)
	raw[len(raw)/2] ^= 1
	refused("tampered", b, b64.EncodeToString(raw), cred)
	refused("another browser's", other, state, cred)
	_, loginState := s.loginOptions(t, b, s.loginPage(t, b, s.authURL("prompt", "login")))
	refused("a sign-in's", b, loginState, cred)
	s.clock.Advance(6 * time.Minute)
	refused("expired", b, state, cred)
	s.clock.Advance(-6 * time.Minute) // fosite checks times against the real clock

	// A fresh state works, and the sign-in endpoint refuses a
	// registration's state in turn.
	if page := s.register(t, b, k, "Phone"); page.Status != http.StatusOK {
		t.Fatalf("register with a fresh state: HTTP %d", page.Status)
	}
	g := providertest.NewBrowser(s.URL)
	interaction := s.loginPage(t, g, s.authURL())
	opts, _ = s.loginOptions(t, g, interaction)
	_, regState := s.registerOptions(t, b)
	page := post(t, g, s.URL+"/login/passkey", url.Values{"csrf": {csrfOf(t, g, s.URL)}, "interaction": {interaction}, "state": {regState}, "credential": {k.get(t, opts)}})
	if page.Status != http.StatusBadRequest || page.Location != nil {
		t.Errorf("sign-in with a registration's state: HTTP %d, location %v", page.Status, page.Location)
	}
}

func TestPasskeySignInCounterAndRemoval(t *testing.T) {
	t.Parallel()
	s := newPasskeyServer(t)
	b := s.signedIn(t)
	k := newSoftKey(t, "localhost", s.URL)
	k.synced = true
	if page := s.register(t, b, k, "  Password  manager "); page.Status != http.StatusOK {
		t.Fatalf("register: HTTP %d", page.Status)
	}
	if f := s.factors(t); f.Passkeys[0].Name != "Password manager" || len(f.RecoveryCodes) != 10 {
		t.Fatalf("stored passkey %+v", f)
	}

	signIn := func(g *providertest.Browser, answer func(map[string]any) string, extra ...string) *providertest.Page {
		interaction := s.loginPage(t, g, s.authURL())
		opts, state := s.loginOptions(t, g, interaction)
		form := url.Values{"csrf": {csrfOf(t, g, s.URL)}, "interaction": {interaction}, "state": {state}, "credential": {answer(opts)}}
		for i := 0; i+1 < len(extra); i += 2 {
			form.Set(extra[i], extra[i+1])
		}
		return post(t, g, s.URL+"/login/passkey", form)
	}
	g := providertest.NewBrowser(s.URL)
	page := signIn(g, func(o map[string]any) string { return k.get(t, o) }, "remember", "yes")
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `value="allow"`) {
		t.Fatalf("passkey sign-in: HTTP %d, want the consent page: %.300s", page.Status, page.Body)
	}
	// "Keep me signed in" counts for a passkey too: the cookie outlives
	// the browser.
	kept := false
	for _, c := range page.Header.Values("Set-Cookie") {
		kept = kept || strings.HasPrefix(c, "session=") && strings.Contains(c, "Max-Age=")
	}
	if !kept {
		t.Errorf("cookies %q after a passkey sign-in with keep me signed in: want a session cookie with Max-Age", page.Header.Values("Set-Cookie"))
	}
	if f := s.factors(t); f.Passkeys[0].LastUsedAt.IsZero() {
		t.Fatal("last use not recorded")
	}

	// The same count again: a clone warning, refused.
	page = signIn(providertest.NewBrowser(s.URL), func(o map[string]any) string { return k.assert(t, o) })
	if page.Status != http.StatusUnauthorized || !strings.Contains(page.Body, "its security counter went backwards") {
		t.Fatalf("repeated sign counter: HTTP %d, want 401 and the clone warning in words", page.Status)
	}
	// Two uses racing with the same new count: one passes, one is refused.
	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	answers := make(chan func(map[string]any) string, 2)
	k.counter++
	for range 2 {
		answers <- func(o map[string]any) string { return k.assert(t, o) }
	}
	var mu sync.Mutex // softKey signs from one goroutine at a time
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := <-answers
			page := signIn(providertest.NewBrowser(s.URL), func(o map[string]any) string { mu.Lock(); defer mu.Unlock(); return a(o) })
			statuses <- page.Status
		}()
	}
	wg.Wait()
	close(statuses)
	ok, refused := 0, 0
	for st := range statuses {
		switch st {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
			refused++
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("two sign-ins with the same counter: %d passed, %d refused; want one each", ok, refused)
	}

	// Another account's handle is not found.
	other := *k
	other.user = []byte("nobody-at-all")
	page = signIn(providertest.NewBrowser(s.URL), func(o map[string]any) string { return other.get(t, o) })
	if page.Status != http.StatusUnauthorized || !strings.Contains(page.Body, "not registered for any account here") {
		t.Fatalf("unknown user handle: HTTP %d", page.Status)
	}

	// Removal takes the password; removing the last factor drops the
	// recovery codes.
	id := b64.EncodeToString(k.id)
	page = post(t, b, s.URL+"/account/passkeys/remove", url.Values{"csrf": {csrfOf(t, b, s.URL)}, "id": {id}, "password": {"wrong"}})
	if page.Status != http.StatusUnauthorized || !strings.Contains(page.Body, "Your current password is not correct.") || len(s.factors(t).Passkeys) != 1 {
		t.Fatalf("removal with a wrong password: HTTP %d", page.Status)
	}
	page = post(t, b, s.URL+"/account/passkeys/remove", url.Values{"csrf": {csrfOf(t, b, s.URL)}, "id": {id}, "password": {alicePass}})
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "The passkey was removed.") {
		t.Fatalf("removal: HTTP %d", page.Status)
	}
	if f := s.factors(t); len(f.Passkeys) != 0 || len(f.RecoveryCodes) != 0 {
		t.Fatalf("after removing the only passkey: %+v", f)
	}
	page = signIn(providertest.NewBrowser(s.URL), func(o map[string]any) string { return k.get(t, o) })
	if page.Status != http.StatusUnauthorized || bytes.Contains([]byte(page.Body), []byte(`value="allow"`)) {
		t.Fatalf("sign-in with a removed passkey: HTTP %d", page.Status)
	}
}

func TestPasskeySecondFactor(t *testing.T) {
	t.Parallel()
	s := newPasskeyServer(t)
	ctx := context.Background()
	// bob, with a passkey of his own.
	bob := storage.User{ID: rand.Text(), Username: "bob", PasswordHash: testHash("bob's long password"), CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.Store.CreateUser(ctx, bob); err != nil {
		t.Fatal(err)
	}
	bobKey := newSoftKey(t, "localhost", s.URL)
	bobBrowser := providertest.NewBrowser(s.URL)
	page, _ := bobBrowser.Get(ctx, s.URL+"/account")
	form, _ := page.ParseForm()
	if page, _ = bobBrowser.Submit(ctx, page, form, url.Values{"username": {"bob"}, "password": {"bob's long password"}}); page.Status != http.StatusOK {
		t.Fatalf("bob signs in: HTTP %d", page.Status)
	}
	s.register(t, bobBrowser, bobKey, "Bob's key")

	aliceKey := newSoftKey(t, "localhost", s.URL)
	s.register(t, s.signedIn(t), aliceKey, "Alice's key")

	// alice's password, then the second-factor page.
	g := providertest.NewBrowser(s.URL)
	page, err := g.Get(ctx, s.authURL())
	if err != nil {
		t.Fatal(err)
	}
	form, _ = page.ParseForm()
	page, err = g.Submit(ctx, page, form, url.Values{"username": {"alice"}, "password": {alicePass}})
	if err != nil || page.Status != http.StatusOK || !strings.Contains(page.Body, `id="passkey-option"`) || !strings.Contains(page.Body, `id="passkey-second"`) {
		t.Fatalf("after the password: HTTP %d, want the second-factor page offering a passkey", page.Status)
	}
	form, err = page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	interaction := form.Values.Get("interaction")
	opts, state := s.loginOptions(t, g, interaction)
	allow, _ := opts["publicKey"].(map[string]any)["allowCredentials"].([]any)
	if len(allow) != 1 || allow[0].(map[string]any)["id"] != b64.EncodeToString(aliceKey.id) || opts["publicKey"].(map[string]any)["userVerification"] != "required" {
		t.Fatalf("second-factor options %v: want alice's passkey only, user verification required", opts)
	}
	// bob's passkey does not stand in for alice's.
	page = post(t, g, s.URL+"/login/passkey", url.Values{"csrf": {csrfOf(t, g, s.URL)}, "interaction": {interaction}, "state": {state}, "credential": {bobKey.get(t, opts)}})
	if page.Status != http.StatusUnauthorized || !strings.Contains(page.Body, "This passkey belongs to another account.") || !strings.Contains(page.Body, `id="passkey-option"`) {
		t.Fatalf("bob's passkey for alice: HTTP %d, want 401 on the second-factor page", page.Status)
	}
	if _, ok, _ := sessionOf(t, s, g); ok {
		t.Fatal("a failed second factor left a session")
	}
	opts, state = s.loginOptions(t, g, interaction)
	page = post(t, g, s.URL+"/login/passkey", url.Values{"csrf": {csrfOf(t, g, s.URL)}, "interaction": {interaction}, "state": {state}, "credential": {aliceKey.get(t, opts)}})
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `value="allow"`) {
		t.Fatalf("alice's passkey: HTTP %d, want the consent page", page.Status)
	}
	sess, ok, err := sessionOf(t, s, g)
	if err != nil || !ok || strings.Join(sess.AMR, " ") != "pwd hwk user mfa" {
		t.Fatalf("session after password and passkey: %+v %v %v, want amr pwd hwk user mfa", sess, ok, err)
	}
}

// sessionOf is the browser session b's cookie names, if any.
func sessionOf(t *testing.T, s *passkeyServer, b *providertest.Browser) (storage.BrowserSession, bool, error) {
	t.Helper()
	u, _ := url.Parse(s.URL)
	for _, c := range b.HTTP.Jar.Cookies(u) {
		if c.Name == "session" {
			sum := sha256.Sum256([]byte(c.Value))
			sess, err := s.Store.GetBrowserSession(context.Background(), hex.EncodeToString(sum[:]))
			return sess, err == nil, err
		}
	}
	return storage.BrowserSession{}, false, nil
}
