package transfer_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
	"github.com/smallsso/provider/storage/postgres"
	"github.com/smallsso/provider/storage/postgres/pgtest"
	"github.com/smallsso/provider/storage/storagetest"
	"github.com/smallsso/provider/storage/transfer"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// opener opens an empty store of one backend for a test.
type opener func(t *testing.T) storage.Store

func openBolt(t *testing.T) storage.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "provider.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T) storage.Store {
	t.Helper()
	pg, err := postgres.Open(t.Context(), postgres.Options{DSN: pgtest.Shared(t).NewDatabase(t), Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return pg
}

var backends = []struct {
	name string
	open opener
}{
	{"bolt", openBolt},
	{"postgres", openPostgres},
}

// TestCopy copies a store holding every family of record between every
// pair of backends, and finds the same records on the other side.
func TestCopy(t *testing.T) {
	t.Parallel()
	for _, from := range backends {
		for _, to := range backends {
			t.Run(from.name+"_to_"+to.name, func(t *testing.T) {
				t.Parallel()
				src, dst := from.open(t), to.open(t)
				want := fill(t, src)
				counts, err := transfer.Copy(t.Context(), src, dst)
				if err != nil {
					t.Fatalf("copy: %v", err)
				}
				wantCounts := transfer.Counts{
					Clients: 2, Users: 2, TrustedIssuers: 1,
					Tokens:          map[storage.TokenKind]int{},
					BrowserSessions: 2, Consents: 2, JTIs: 2, Factors: 1,
				}
				for _, k := range storage.TokenKinds {
					wantCounts.Tokens[k] = len(want.tokens[k])
				}
				if !reflect.DeepEqual(counts, wantCounts) {
					t.Errorf("counts %+v, want %+v", counts, wantCounts)
				}
				if got := dump(t, dst); !reflect.DeepEqual(got, want) {
					t.Errorf("target differs from the source:\n got %+v\nwant %+v", got, want)
				}
				if got := dump(t, src); !reflect.DeepEqual(got, want) {
					t.Errorf("source changed by the copy")
				}
				checkIndexes(t, dst)
			})
		}
	}
}

// checkIndexes checks that the copy went through the target's own write
// paths: its indexes find the records, and its janitor strips an expired
// replay answer.
func checkIndexes(t *testing.T, s storage.Store) {
	t.Helper()
	ctx := t.Context()
	if u, err := s.GetUserByUsername(ctx, "alice"); err != nil || u.ID != "u-alice" {
		t.Errorf("user by name: %+v, %v", u, err)
	}
	if ss, err := s.ListUserSessions(ctx, "u-alice"); err != nil || len(ss) != 2 {
		t.Errorf("sessions of alice: %d, %v", len(ss), err)
	}
	if cs, err := s.ListConsents(ctx, "u-alice"); err != nil || len(cs) != 2 {
		t.Errorf("consents of alice: %d, %v", len(cs), err)
	}
	// The factors are alice's (deleted with her, below); bob has none.
	if f, err := s.GetFactors(ctx, "u-alice"); err != nil || f.TOTP == nil || len(f.Passkeys) != 2 {
		t.Errorf("factors of alice: %+v, %v", f, err)
	}
	if _, err := s.GetFactors(ctx, "u-bob"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("factors of bob: %v, want ErrNotFound", err)
	}
	// The JTI is known: a replay is refused.
	if err := s.CreateJTI(ctx, storage.JTI{ID: "jti-live", ExpiresAt: now().Add(time.Hour)}, now()); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("copied JTI used again: %v, want ErrAlreadyExists", err)
	}
	// The rotated refresh token stays inactive: reuse is detected.
	if err := s.DeactivateToken(ctx, storage.KindRefreshToken, "refresh-rotated"); !errors.Is(err, storage.ErrInactive) {
		t.Errorf("deactivate the rotated refresh token: %v, want ErrInactive", err)
	}
	// Revoking the family reaches the copied tokens (request ID index).
	if err := s.RevokeByRequestID(ctx, storage.KindAccessToken, "req-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetToken(ctx, storage.KindAccessToken, "access-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("access token after revoking its family: %v, want ErrNotFound", err)
	}
	// Past the replay's end the janitor strips it and keeps the record.
	if _, err := s.GarbageCollect(ctx, now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	r, err := s.GetToken(ctx, storage.KindRefreshToken, "refresh-rotated")
	if err != nil || len(r.Replay) != 0 || !r.ReplayUntil.IsZero() {
		t.Errorf("rotated refresh token after its replay's end: replay %q until %v, err %v; want it stripped", r.Replay, r.ReplayUntil, err)
	}
	// The copied factors go with their user.
	if err := s.DeleteUser(ctx, "u-alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetFactors(ctx, "u-alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("factors of alice after deleting her: %v, want ErrNotFound", err)
	}
}

func TestCopyRefusesATargetWithData(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, seed := range []struct {
		name string
		put  func(storage.Store) error
		want string
	}{
		{"client", func(s storage.Store) error { return s.CreateClient(ctx, storage.Client{ID: "c"}) }, "1 client"},
		{"user", func(s storage.Store) error { return s.CreateUser(ctx, storage.User{ID: "u", Username: "u"}) }, "1 user"},
		{"token", func(s storage.Store) error { return s.CreateToken(ctx, tok(storage.KindPKCE, "p", "r", true)) }, "tokens"},
		{"jti", func(s storage.Store) error {
			return s.CreateJTI(ctx, storage.JTI{ID: "j", ExpiresAt: now().Add(time.Hour)}, now())
		}, "JTIs"},
		{"factors", func(s storage.Store) error {
			if err := s.CreateUser(ctx, storage.User{ID: "u", Username: "u"}); err != nil {
				return err
			}
			return s.UpdateFactors(ctx, "u", func(f storage.Factors) (storage.Factors, error) {
				f.RecoveryCodes = []storage.RecoveryCode{{Hash: "h"}}
				return f, nil
			})
		}, "1 user, second factors"},
	} {
		src, dst := openBolt(t), openBolt(t)
		fill(t, src)
		if err := seed.put(dst); err != nil {
			t.Fatal(err)
		}
		_, err := transfer.Copy(ctx, src, dst)
		if !errors.Is(err, transfer.ErrNotEmpty) || !strings.Contains(err.Error(), seed.want) {
			t.Errorf("%s in the target: %v, want ErrNotEmpty naming %q", seed.name, err, seed.want)
		}
		if what, err := transfer.Empty(ctx, dst); err != nil || what != seed.want {
			t.Errorf("Empty after a refused copy: %q, %v; want %q (nothing copied)", what, err, seed.want)
		}
	}
}

// TestCopyStopsOnCancel: a cancelled copy returns the error, and what it
// wrote is only part of the records (the target is to be dropped).
func TestCopyStopsOnCancel(t *testing.T) {
	t.Parallel()
	src, dst := openBolt(t), openBolt(t)
	fill(t, src)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := transfer.Copy(ctx, src, dst); !errors.Is(err, context.Canceled) {
		t.Fatalf("copy with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestCopyManyRecords crosses several target transactions.
func TestCopyManyRecords(t *testing.T) {
	t.Parallel()
	src, dst := openBolt(t), openBolt(t)
	ctx := t.Context()
	tx, err := src.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1234
	for i := range n {
		if err := src.CreateToken(tx, tok(storage.KindAccessToken, fmt.Sprintf("a-%d", i), fmt.Sprintf("r-%d", i), true)); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.CommitTx(tx); err != nil {
		t.Fatal(err)
	}
	counts, err := transfer.Copy(ctx, src, dst)
	if err != nil || counts.TokensTotal() != n {
		t.Fatalf("copy: %d tokens, %v; want %d", counts.TokensTotal(), err, n)
	}
	if got := dump(t, dst); len(got.tokens[storage.KindAccessToken]) != n {
		t.Fatalf("target holds %d access tokens, want %d", len(got.tokens[storage.KindAccessToken]), n)
	}
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// created is a fixed time at the precision every backend keeps.
func created() time.Time { return time.Date(2025, 3, 1, 9, 30, 0, 123456000, time.UTC) }

func tok(kind storage.TokenKind, sig, req string, active bool) storage.TokenRequest {
	return storage.TokenRequest{
		Kind: kind, Signature: sig, RequestID: req, ClientID: "app", Subject: "u-alice",
		RequestedAt: created(), Scopes: []string{"openid", "offline_access"}, GrantedScopes: []string{"openid"},
		Audience: []string{"app"}, GrantedAudience: []string{"app"},
		Form:    map[string][]string{"redirect_uri": {"https://app.example/cb"}},
		Session: []byte(`{"claims":{"sub":"u-alice"}}`), Active: active,
		ExpiresAt: now().Add(time.Hour),
	}
}

// records is everything a store holds, sorted, in comparable form.
type records struct {
	clients  []storage.Client
	users    []storage.User
	issuers  []storage.TrustedIssuer
	tokens   map[storage.TokenKind][]storage.TokenRequest
	sessions []storage.BrowserSession
	consents []storage.Consent
	jtis     []storage.JTI
	factors  []storage.Factors
}

// fill puts records of every family into s and returns them as dump
// will find them.
func fill(t *testing.T, s storage.Store) records {
	t.Helper()
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"app", "registered"} {
		c := storage.Client{ID: id, SecretHash: "$argon2id$hash-of-" + id, Source: "config", CreatedAt: created(), UpdatedAt: created(),
			ClientSettings: storage.ClientSettings{Name: "App " + id, RedirectURIs: []string{"https://" + id + ".example/cb"},
				GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid"}},
			Metadata: map[string]any{"software_id": "sw-" + id}}
		if id == "registered" {
			c.Source, c.RegistrationAccessTokenHash, c.RegisteredWithToken = "registration", "rat-hash", true
		}
		must(s.CreateClient(ctx, c))
	}
	for _, name := range []string{"alice", "bob"} {
		must(s.CreateUser(ctx, storage.User{ID: "u-" + name, Username: name, PasswordHash: "$argon2id$" + name,
			Profile:   storage.Profile{Email: name + "@example.org", Groups: []string{"staff"}, Address: &storage.Address{Country: "NL"}},
			CreatedAt: created(), UpdatedAt: created().Add(time.Minute)}))
	}
	must(s.CreateTrustedIssuer(ctx, storage.TrustedIssuer{ID: "ti-1", Issuer: "https://ci.example", AnySubject: true,
		JWKS: `{"keys":[]}`, Scopes: []string{"deploy"}, MaxLifetime: time.Hour, CreatedAt: created()}))
	for _, k := range storage.TokenKinds {
		must(s.CreateToken(ctx, tok(k, string(k)+"-1", "req-1", true)))
	}
	// A rotated refresh token with its grace answer, and one rotated
	// before the grace was in use.
	must(s.CreateToken(ctx, tok(storage.KindRefreshToken, "refresh-rotated", "req-1", false)))
	must(s.SetTokenReplay(ctx, storage.KindRefreshToken, "refresh-rotated", []byte("sealed-answer"), now().Add(5*time.Minute)))
	must(s.CreateToken(ctx, tok(storage.KindAuthorizeCode, "code-used", "req-2", false)))
	for _, id := range []string{"sess-1", "sess-2"} {
		must(s.CreateBrowserSession(ctx, storage.BrowserSession{ID: id, UserID: "u-alice", SID: "sid-" + id,
			ClientIDs: []string{"app"}, AuthTime: created(), Remember: true, CreatedAt: created(), ExpiresAt: now().Add(time.Hour)}))
	}
	must(s.SaveConsent(ctx, storage.Consent{UserID: "u-alice", ClientID: "app", Scopes: []string{"openid"}, GrantedAt: created()}))
	must(s.SaveConsent(ctx, storage.Consent{UserID: "u-alice", ClientID: "registered", Scopes: []string{"openid"},
		GrantedAt: created(), ExpiresAt: now().Add(time.Hour)}))
	must(s.CreateJTI(ctx, storage.JTI{ID: "jti-live", ExpiresAt: now().Add(time.Hour)}, now()))
	must(s.CreateJTI(ctx, storage.JTI{ID: "jti-old", ExpiresAt: now().Add(time.Second)}, now()))
	// Alice has every kind of factor; bob has none.
	must(s.UpdateFactors(ctx, "u-alice", func(f storage.Factors) (storage.Factors, error) {
		f.TOTP = &storage.TOTPFactor{SecretSealed: []byte("\x01sealed-totp\x00\xff"), LastStep: 59_000_000, CreatedAt: created()}
		f.Passkeys = []storage.Passkey{
			{ID: []byte{0, 1, 0xfe}, Name: "Laptop", CredentialSealed: []byte("\x01sealed-cred"), CreatedAt: created(), LastUsedAt: created().Add(time.Hour)},
			{ID: []byte{0xff}, Name: "Key", CredentialSealed: []byte("\x01sealed-cred-2"), CreatedAt: created()},
		}
		f.RecoveryCodes = []storage.RecoveryCode{{Hash: "h1", UsedAt: created().Add(time.Minute)}, {Hash: "h2"}}
		f.UpdatedAt = created().Add(2 * time.Hour)
		return f, nil
	}))
	return dump(t, s)
}

// dump reads every record of s.
func dump(t *testing.T, s storage.Store) records {
	t.Helper()
	ctx := t.Context()
	var r records
	var err error
	if r.clients, err = s.ListClients(ctx); err != nil {
		t.Fatal(err)
	}
	if r.users, err = s.ListUsers(ctx); err != nil {
		t.Fatal(err)
	}
	if r.issuers, err = s.ListTrustedIssuers(ctx); err != nil {
		t.Fatal(err)
	}
	r.tokens = map[storage.TokenKind][]storage.TokenRequest{}
	for _, k := range storage.TokenKinds {
		var ts []storage.TokenRequest
		if err := s.WalkTokens(ctx, k, func(tr storage.TokenRequest) error { ts = append(ts, tr); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(ts, func(a, b storage.TokenRequest) int { return cmp.Compare(a.Signature, b.Signature) })
		r.tokens[k] = storagetest.Normalize(ts)
	}
	if err := s.WalkBrowserSessions(ctx, func(b storage.BrowserSession) error { r.sessions = append(r.sessions, b); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.WalkConsents(ctx, func(c storage.Consent) error { r.consents = append(r.consents, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.WalkJTIs(ctx, func(j storage.JTI) error { r.jtis = append(r.jtis, j); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.WalkFactors(ctx, func(f storage.Factors) error { r.factors = append(r.factors, f); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(r.factors, func(a, b storage.Factors) int { return cmp.Compare(a.UserID, b.UserID) })
	r.factors = storagetest.Normalize(r.factors)
	slices.SortFunc(r.clients, func(a, b storage.Client) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(r.users, func(a, b storage.User) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(r.issuers, func(a, b storage.TrustedIssuer) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(r.sessions, func(a, b storage.BrowserSession) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(r.consents, func(a, b storage.Consent) int { return cmp.Compare(a.ClientID, b.ClientID) })
	slices.SortFunc(r.jtis, func(a, b storage.JTI) int { return cmp.Compare(a.ID, b.ID) })
	r.clients, r.users, r.issuers = storagetest.Normalize(r.clients), storagetest.Normalize(r.users), storagetest.Normalize(r.issuers)
	r.sessions, r.consents, r.jtis = storagetest.Normalize(r.sessions), storagetest.Normalize(r.consents), storagetest.Normalize(r.jtis)
	return r
}
