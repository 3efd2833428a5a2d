package provider

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ory/fosite"
	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

// grantRecord is one token record as fosite asks the store to keep it.
type grantRecord struct {
	kind      storage.TokenKind
	sig       string
	accessSig string
	tt        fosite.TokenType
	req       *fosite.Request
}

// realisticRecords returns the records one grant of style ("cc" or
// "refresh") stores, with the values a real server gives them: 43-character
// signatures, UUID request IDs, rand.Text subjects, a session as
// issueCode and fosite fill it (profile claims, sid, amr, expiries), the
// form as fosite sanitizes it.
func realisticRecords(style string, now time.Time) []grantRecord {
	switch style {
	case "cc":
		s := newSession()
		s.Subject = "ci-runner"
		s.SetExpiresAt(fosite.AccessToken, now.Add(time.Hour))
		r := &fosite.Request{
			ID: newUUID(), RequestedAt: now, Client: &fosite.DefaultClient{ID: "ci-runner"},
			RequestedScope: fosite.Arguments{"api:read", "api:write"}, GrantedScope: fosite.Arguments{"api:read", "api:write"},
			Form:    url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read api:write"}},
			Session: s,
		}
		return []grantRecord{{storage.KindAccessToken, secret.NewToken(), "", fosite.AccessToken, r}}
	case "refresh":
		authTime := now.Add(-time.Hour).Truncate(time.Second)
		s := userSession("https://sso.example.com", rand.Text(), "alice", authTime, authTime)
		scopes := fosite.Arguments{"openid", "profile", "email", "groups", "offline_access"}
		for k, v := range userClaims(storage.User{ID: s.Subject, Username: "alice", UpdatedAt: authTime, Profile: storage.Profile{
			Email: "alice@example.org", EmailVerified: true, Name: "Alice Liddell", GivenName: "Alice",
			FamilyName: "Liddell", Groups: []string{"admins", "staff"},
		}}, scopes) {
			if k != "sub" {
				s.Claims.Extra[k] = v
			}
		}
		s.Claims.AuthenticationMethodsReferences = []string{amrPassword}
		s.Claims.Extra[sidClaim] = secret.NewToken()
		s.SetExpiresAt(fosite.AuthorizeCode, authTime.Add(10*time.Minute+123456789))
		s.SetExpiresAt(fosite.AccessToken, now.Add(time.Hour).Round(time.Second))
		s.SetExpiresAt(fosite.RefreshToken, now.Add(720*time.Hour).Round(time.Second))
		r := &fosite.Request{
			ID: newUUID(), RequestedAt: now, Client: &fosite.DefaultClient{ID: "grafana"},
			RequestedScope: scopes, GrantedScope: scopes,
			Form:    url.Values{"grant_type": {"refresh_token"}},
			Session: s,
		}
		access := secret.NewToken()
		return []grantRecord{
			{storage.KindAccessToken, access, "", fosite.AccessToken, r},
			{storage.KindRefreshToken, secret.NewToken(), access, fosite.RefreshToken, r},
		}
	}
	panic("unknown style " + style)
}

// legacyValue is the bytes the store wrote for g before compact records:
// the whole request with its form and its JSON session, in a JSON
// envelope (record version 1).
func legacyValue(t testing.TB, g grantRecord) []byte {
	sess, err := json.Marshal(g.req.Session)
	if err != nil {
		t.Fatal(err)
	}
	rec := storage.TokenRequest{
		Kind: g.kind, Signature: g.sig, RequestID: g.req.ID, ClientID: g.req.Client.GetID(),
		Subject: g.req.Session.GetSubject(), RequestedAt: g.req.RequestedAt,
		Scopes: g.req.RequestedScope, GrantedScopes: g.req.GrantedScope,
		Audience: g.req.RequestedAudience, GrantedAudience: g.req.GrantedAudience,
		Form: g.req.Form, Session: sess, Active: true, AccessSignature: g.accessSig,
		ExpiresAt: g.req.Session.GetExpiresAt(g.tt),
	}
	b, err := json.Marshal(struct {
		V    int                  `json:"v"`
		Data storage.TokenRequest `json:"data"`
	}{1, rec})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storedValues reads the value of every token record of path, by kind.
func storedValues(t testing.TB, path string) map[storage.TokenKind]map[string][]byte {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[storage.TokenKind]map[string][]byte{}
	err = db.View(func(tx *bbolt.Tx) error {
		tokens := tx.Bucket([]byte("tokens"))
		for _, kind := range storage.TokenKinds {
			out[kind] = map[string][]byte{}
			err := tokens.Bucket([]byte(kind)).ForEach(func(k, v []byte) error {
				out[kind][string(k)] = append([]byte(nil), v...)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The bytes of a client_credentials and of a refresh-grant record, as
// the store writes them now and as it wrote them before (record version
// 1): at most 400 on average, as issue 13 asks.
func TestTokenRecordSizes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ci-runner", "grafana"} {
		if err := st.CreateClient(ctx, storage.Client{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	s := &fositeStore{store: st, now: time.Now, accessLifespan: time.Hour}
	const grants = 50
	type sizes struct{ n, before, after int }
	sums := map[string]*sizes{}
	labelOf := map[string]string{} // by signature
	for _, style := range []string{"cc", "refresh"} {
		for range grants {
			for _, g := range realisticRecords(style, time.Now().UTC()) {
				if err := s.create(ctx, g.kind, g.sig, g.req, g.tt, g.accessSig); err != nil {
					t.Fatal(err)
				}
				l := style + " grant, " + string(g.kind) + " record"
				if sums[l] == nil {
					sums[l] = &sizes{}
				}
				sums[l].n++
				sums[l].before += len(legacyValue(t, g))
				labelOf[g.sig] = l
			}
		}
	}
	// What the provider reads back is what it stored.
	for _, g := range realisticRecords("refresh", time.Now().UTC()) {
		if g.kind != storage.KindRefreshToken {
			continue
		}
		if err := s.create(ctx, g.kind, g.sig, g.req, g.tt, g.accessSig); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRefreshTokenSession(ctx, g.sig, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, gs := g.req.Session.(*session), got.GetSession().(*session)
		if gs.Claims.Extra[sidClaim] != want.Claims.Extra[sidClaim] || gs.Subject != want.Subject ||
			!gs.GetExpiresAt(fosite.RefreshToken).Equal(want.GetExpiresAt(fosite.RefreshToken)) {
			t.Errorf("refresh record reads back as %+v", gs)
		}
		if len(got.GetRequestForm()) != 0 {
			t.Errorf("refresh record keeps a form: %v", got.GetRequestForm())
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	found := 0
	for kind, m := range storedValues(t, path) {
		for sig, v := range m {
			l, ok := labelOf[sig]
			if !ok {
				continue
			}
			found++
			sums[l].after += len(v)
			if v[0] != 2 {
				t.Errorf("%s record is not of record version 2: %x…", kind, v[:1])
			}
		}
	}
	if found != len(labelOf) {
		t.Fatalf("found %d of the %d records stored", found, len(labelOf))
	}
	for _, l := range []string{"cc grant, access record", "refresh grant, refresh record", "refresh grant, access record"} {
		sm := sums[l]
		before, after := float64(sm.before)/float64(sm.n), float64(sm.after)/float64(sm.n)
		t.Logf("%-31s %3d records: %6.1f bytes before (v1 JSON), %6.1f after (v2): %.1fx smaller", l, sm.n, before, after, before/after)
		if after > 400 {
			t.Errorf("%s: %.1f bytes on average, more than 400", l, after)
		}
	}
}

// newUUID is a random (version 4) UUID in its canonical text form, as
// fosite's request IDs are.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

var (
	seedN     = flag.Int("seed.n", 0, "TestSeedSize: seed this many live token records (0 skips the test)")
	seedStyle = flag.String("seed.style", "cc", `TestSeedSize: "cc" (client_credentials access tokens) or "refresh" (an access and a refresh record per grant)`)
	seedDB    = flag.String("seed.db", "", "TestSeedSize: the database file to fill (default: one in a temp dir, removed after)")
	seedBatch = flag.Int("seed.batch", 1000, "TestSeedSize: records per transaction")
)

// TestSeedSize fills a database with live token records, as the provider
// writes them, in large transactions, and reports the file's size. It is
// a measurement, not a check, and runs only when asked:
//
//	go test ./provider -run TestSeedSize -seed.n=1000000 [-seed.style=refresh] [-seed.db=/tmp/p.db] -timeout 60m
func TestSeedSize(t *testing.T) {
	if *seedN <= 0 {
		t.Skip("set -seed.n to seed a database")
	}
	ctx := context.Background()
	path := *seedDB
	if path == "" {
		path = filepath.Join(t.TempDir(), "provider.db")
	}
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &fositeStore{store: st, now: time.Now, accessLifespan: time.Hour}
	start := time.Now()
	n := 0
	for n < *seedN {
		txCtx, err := st.BeginTx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < *seedBatch && n < *seedN; {
			for _, g := range realisticRecords(*seedStyle, time.Now().UTC()) {
				if err := s.create(txCtx, g.kind, g.sig, g.req, g.tt, g.accessSig); err != nil {
					t.Fatal(err)
				}
				i++
				n++
			}
		}
		if err := st.CommitTx(txCtx); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("%s: %d records in %v (%.0f/s): file %d bytes (%.1f MB), %.0f bytes per record",
		*seedStyle, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), fi.Size(), float64(fi.Size())/1e6, float64(fi.Size())/float64(n))
	t.Log(msg)
	fmt.Println(msg)
	// Where the bytes are: the pages each bucket uses, and what they hold.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		line := fmt.Sprintf("  in use %d bytes, free pages %d", tx.Size(), db.Stats().FreePageN)
		for _, name := range []string{"tokens", "token_request_ids", "expiry"} {
			st := tx.Bucket([]byte(name)).Stats()
			line += fmt.Sprintf("; %s: %d keys, %.1f MB in pages (%.1f MB used)", name, st.KeyN,
				float64(st.BranchAlloc+st.LeafAlloc)/1e6, float64(st.BranchInuse+st.LeafInuse)/1e6)
		}
		t.Log(line)
		fmt.Println(line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
