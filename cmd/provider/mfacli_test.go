package main

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
	"github.com/smallsso/provider/storage/postgres/pgtest"
)

// totpOut is what `users totp add` printed: the URI, the recovery codes
// (nil when none were generated), and the key the URI holds.
type totpOut struct {
	uri   string
	key   *otp.Key
	codes []string
	all   string
}

// parseTOTPAdd checks the shape of `users totp add` output: the URI alone
// on the first line, then (with --qr) the QR code, a note, and the
// labelled recovery codes when wantCodes.
func parseTOTPAdd(t *testing.T, out, username string, qr, wantCodes bool) totpOut {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	uri := lines[0]
	if !strings.HasPrefix(uri, "otpauth://totp/") {
		t.Fatalf("first line %q, want the otpauth:// URI:\n%s", uri, out)
	}
	if n := strings.Count(out, "secret="); n != 1 {
		t.Errorf("the secret is printed %d times, want once:\n%s", n, out)
	}
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		t.Fatalf("the printed URI does not parse: %v", err)
	}
	if key.Type() != "totp" || key.AccountName() != username || key.Issuer() != "127.0.0.1" || key.Secret() == "" {
		t.Errorf("key type %q account %q issuer %q, want totp for %s by 127.0.0.1", key.Type(), key.AccountName(), key.Issuer(), username)
	}
	if qr != strings.Contains(out, "█") {
		t.Errorf("QR code printed = %v, want %v:\n%s", !qr, qr, out)
	}
	res := totpOut{uri: uri, key: key, all: out}
	label := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "recovery codes for "+username) {
			label = i
		}
	}
	if !wantCodes {
		if label >= 0 {
			t.Errorf("recovery codes printed, want none:\n%s", out)
		}
		return res
	}
	if label < 0 || len(lines) != label+1+mfa.RecoveryCodeCount {
		t.Fatalf("want a label then %d recovery codes at the end:\n%s", mfa.RecoveryCodeCount, out)
	}
	res.codes = lines[label+1:]
	for _, c := range res.codes {
		if !mfa.LooksLikeRecoveryCode(c) {
			t.Errorf("recovery code line %q", c)
		}
	}
	return res
}

// totpCode is the code of key at now.
func totpCode(t *testing.T, key *otp.Key, now time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(key.Secret(), now, totp.ValidateOpts{Period: uint(key.Period()), Digits: key.Digits(), Algorithm: key.Algorithm()})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// storedFactors reads username's factors and the second-factor keys of
// c's installation from the database (no server may hold a bbolt file).
func storedFactors(t *testing.T, c *testConfig, username string) (storage.Factors, *mfa.Keys, error) {
	t.Helper()
	cfg, err := loadConfig(c.path)
	if err != nil {
		t.Fatal(err)
	}
	var f storage.Factors
	var keys *mfa.Keys
	err = func() error {
		if cfg.usesPostgres() {
			pg, store, err := openPostgres(t.Context(), cfg, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			km, err := openKeysOn(cfg, pg, nil)
			if err != nil {
				t.Fatal(err)
			}
			sec, err := km.Secret("provider")
			if err != nil {
				t.Fatal(err)
			}
			keys = mfa.NewKeys(func() ([]byte, error) { return sec, nil })
			u, err := store.GetUserByUsername(t.Context(), username)
			if err != nil {
				return err
			}
			f, err = store.GetFactors(t.Context(), u.ID)
			return err
		}
		km, err := openKeysOn(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		sec, err := km.Secret("provider")
		if err != nil {
			t.Fatal(err)
		}
		keys = mfa.NewKeys(func() ([]byte, error) { return sec, nil })
		var ferr error
		withStore(t, c, func(s *bolt.Store) {
			u, err := s.GetUserByUsername(t.Context(), username)
			if err != nil {
				ferr = err
				return
			}
			f, ferr = s.GetFactors(t.Context(), u.ID)
		})
		return ferr
	}()
	return f, keys, err
}

// checkEnrolled checks that the stored factor is the printed one: a code
// computed from the URI is accepted against the sealed secret (once), and
// the printed recovery codes are the stored ones.
func checkEnrolled(t *testing.T, c *testConfig, username string, out totpOut) {
	t.Helper()
	f, keys, err := storedFactors(t, c, username)
	if err != nil {
		t.Fatalf("stored factors of %s: %v", username, err)
	}
	if f.TOTP == nil || f.TOTP.CreatedAt.IsZero() || f.TOTP.LastStep != 0 {
		t.Fatalf("stored TOTP factor %+v", f.TOTP)
	}
	if bytes.Contains(f.TOTP.SecretSealed, []byte(out.key.Secret())) {
		t.Fatal("the stored TOTP secret is not sealed")
	}
	secret, err := keys.OpenTOTP(f.UserID, f.TOTP.SecretSealed)
	if err != nil {
		t.Fatalf("open the stored secret with the provider's keys: %v", err)
	}
	now := time.Now()
	code := totpCode(t, out.key, now)
	g, err := mfa.CheckTOTP(f, secret, code, now)
	if err != nil {
		t.Fatalf("a code from the printed URI is refused: %v", err)
	}
	if _, err := mfa.CheckTOTP(g, secret, code, now); !errors.Is(err, mfa.ErrCodeUsed) {
		t.Errorf("the same code again: %v, want ErrCodeUsed", err)
	}
	if out.codes != nil {
		if len(f.RecoveryCodes) != mfa.RecoveryCodeCount {
			t.Fatalf("%d recovery codes stored, want %d", len(f.RecoveryCodes), mfa.RecoveryCodeCount)
		}
		for _, rc := range out.codes {
			if _, err := mfa.UseRecoveryCode(keys, f, rc, now); err != nil {
				t.Errorf("printed recovery code %s: %v", rc, err)
			}
		}
	}
}

// noSecretAt fails t if the file at path holds the TOTP secret (base32 or
// raw) or a recovery code.
func noSecretAt(t *testing.T, what, path string, out totpOut) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	noSecretIn(t, what, data, out)
}

func noSecretIn(t *testing.T, what string, data []byte, out totpOut) {
	t.Helper()
	secret := out.key.Secret()
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil || len(raw) < 16 {
		t.Fatalf("decode the secret: %v", err)
	}
	if bytes.Contains(data, []byte(secret)) || bytes.Contains(bytes.ToLower(data), []byte(strings.ToLower(secret))) {
		t.Errorf("%s holds the TOTP secret in base32", what)
	}
	if bytes.Contains(data, raw) {
		t.Errorf("%s holds the raw TOTP secret", what)
	}
	// Records are JSON, where bytes are base64: the secret stored as
	// bytes, in clear, would read so (its encoding less the last group,
	// which depends on what follows).
	for _, b := range [][]byte{[]byte(secret), raw} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
			e := enc.EncodeToString(b)
			if bytes.Contains(data, []byte(e[:len(e)-4])) {
				t.Errorf("%s holds the TOTP secret in base64", what)
			}
		}
	}
	for _, c := range out.codes {
		if bytes.Contains(data, []byte(c)) || bytes.Contains(data, []byte(strings.ReplaceAll(c, "-", ""))) {
			t.Errorf("%s holds a recovery code", what)
		}
	}
}

// auditOps are the admin changes in the audit log at path, as
// "op object outcome[/reason]".
func auditOps(t *testing.T, path string) (string, []string) {
	t.Helper()
	raw, events := readAudit(t, path)
	var ops []string
	for _, e := range events {
		if e.Name == audit.AdminChange {
			s := e.Op + " " + e.Object + " " + e.Outcome
			if e.Reason != "" {
				s += "/" + e.Reason
			}
			ops = append(ops, s)
		}
	}
	return raw, ops
}

// usersListMFA is alice's MFA column and --json summary.
func usersListMFA(t *testing.T, c *testConfig, username string) (string, map[string]any) {
	t.Helper()
	out := runCLI(t, "", "users", "list", "--config", c.path).ok(t)
	cols := line(t, out, username)
	var users []map[string]any
	if err := json.Unmarshal([]byte(runCLI(t, "", "users", "list", "--json", "--config", c.path).ok(t)), &users); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u["username"] == username {
			m, _ := u["mfa"].(map[string]any)
			return cols[len(cols)-1], m
		}
	}
	t.Fatalf("%s not in users list --json", username)
	return "", nil
}

// testTOTPVerbs runs the verbs against c, with a server running or not;
// stopped, when set, is called before the database is read directly.
func testTOTPVerbs(t *testing.T, c *testConfig, restart func(), stopped func()) []totpOut {
	F := c.path
	out := parseTOTPAdd(t, runCLI(t, "", "users", "totp", "add", "alice", "--config", F).ok(t), "alice", false, true)
	if mfaCol, m := usersListMFA(t, c, "alice"); mfaCol != "totp" || m["totp"] != true || m["recovery_codes_left"] != float64(10) {
		t.Errorf("users list after totp add: MFA column %q, json %v", mfaCol, m)
	}

	line := runCLI(t, "", "users", "totp", "add", "alice", "--config", F).fails(t, 1)
	if want := "provider: users totp add: alice already has an authenticator app: remove it first (provider users totp remove alice)"; line != want {
		t.Errorf("second add: %q, want %q", line, want)
	}
	line = runCLI(t, "", "users", "totp", "add", "nobody", "--config", F).fails(t, 1)
	if want := `provider: users totp add: user "nobody" does not exist`; line != want {
		t.Errorf("add for nobody: %q, want %q", line, want)
	}
	line = runCLI(t, "", "users", "totp", "add", "--config", F).fails(t, 2)
	if !strings.Contains(line, "expects one USERNAME") {
		t.Errorf("add without a name: %q", line)
	}

	stopped()
	checkEnrolled(t, c, "alice", out)
	restart()

	if o := runCLI(t, "", "users", "totp", "remove", "alice", "--config", F).ok(t); o != "removed the authenticator app of alice\n" {
		t.Errorf("remove printed %q", o)
	}
	line = runCLI(t, "", "users", "totp", "remove", "alice", "--config", F).fails(t, 1)
	if want := "provider: users totp remove: alice has no authenticator app"; line != want {
		t.Errorf("second remove: %q, want %q", line, want)
	}
	line = runCLI(t, "", "users", "totp", "remove", "nobody", "--config", F).fails(t, 1)
	if want := `provider: users totp remove: user "nobody" does not exist`; line != want {
		t.Errorf("remove for nobody: %q, want %q", line, want)
	}
	stopped()
	// No factor left: the recovery codes went with the app.
	if f, _, err := storedFactors(t, c, "alice"); err != nil || f.TOTP != nil || len(f.RecoveryCodes) != 0 {
		t.Errorf("factors after remove: %+v, %v; want none", f, err)
	}
	restart()
	if mfaCol, m := usersListMFA(t, c, "alice"); mfaCol != "-" || m["totp"] != false {
		t.Errorf("users list after totp remove: MFA column %q, json %v", mfaCol, m)
	}

	// Enrolled again (a first factor again: new codes), with a QR code;
	// then reset.
	again := parseTOTPAdd(t, runCLI(t, "", "users", "totp", "add", "alice", "--qr", "--config", F).ok(t), "alice", true, true)
	if again.key.Secret() == out.key.Secret() {
		t.Error("a new enrolment has the old secret")
	}
	if o := runCLI(t, "", "users", "mfa", "reset", "alice", "--config", F).ok(t); o != "removed every second factor of alice (totp, 10 recovery codes)\n" {
		t.Errorf("reset printed %q", o)
	}
	if o := runCLI(t, "", "users", "mfa", "reset", "alice", "--config", F).ok(t); o != "alice had no second factor; nothing removed\n" {
		t.Errorf("second reset printed %q", o)
	}
	line = runCLI(t, "", "users", "mfa", "reset", "nobody", "--config", F).fails(t, 1)
	if want := `provider: users mfa reset: user "nobody" does not exist`; line != want {
		t.Errorf("reset for nobody: %q, want %q", line, want)
	}
	stopped()
	if _, _, err := storedFactors(t, c, "alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("factors after reset: %v, want none", err)
	}
	return []totpOut{out, again}
}

// wantTOTPAudit is the audit trail testTOTPVerbs leaves.
var wantTOTPAudit = []string{
	"user_totp_add alice success",
	"user_totp_add alice failure/invalid",
	"user_totp_add nobody failure/not_found",
	"user_totp_remove alice success",
	"user_totp_remove alice failure/invalid",
	"user_totp_remove nobody failure/not_found",
	"user_totp_add alice success",
	"user_mfa_reset alice success",
	"user_mfa_reset alice success",
	"user_mfa_reset nobody failure/not_found",
}

func checkTOTPAudit(t *testing.T, path string, outs []totpOut) {
	t.Helper()
	raw, ops := auditOps(t, path)
	if strings.Join(ops, "\n") != strings.Join(wantTOTPAudit, "\n") {
		t.Errorf("audit trail:\n%s\nwant:\n%s", strings.Join(ops, "\n"), strings.Join(wantTOTPAudit, "\n"))
	}
	for _, o := range outs {
		noSecretIn(t, "the audit log", []byte(raw), o)
	}
}

// With no server running, the CLI enrols, removes and resets on the bbolt
// file itself, sealing with the installation's keys, and audits it.
func TestUsersTOTPDirect(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), appConfig+"audit:\n  file: audit.log\n")
	// The server has run once (it made the keys and alice), as in life.
	startServer(t, c).stop(t)
	outs := testTOTPVerbs(t, c, func() {}, func() {})
	checkTOTPAudit(t, filepath.Join(c.dir, "audit.log"), outs)
	for _, o := range outs {
		noSecretAt(t, "the database file", c.bolt, o)
	}
}

// With the server running, the same verbs go through its admin socket:
// the server seals with its keys, and neither its log nor its audit
// trail holds a secret.
func TestUsersTOTPThroughServer(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), appConfig+"audit:\n  file: audit.log\n")
	s := startServer(t, c)
	var logs []string
	outs := testTOTPVerbs(t, c, func() { s = startServer(t, c) }, func() {
		s.stop(t)
		logs = append(logs, s.stderr.String())
	})
	s.stop(t)
	logs = append(logs, s.stderr.String())
	_, events := readAudit(t, filepath.Join(c.dir, "audit.log"))
	for _, e := range events {
		if e.Name == audit.AdminChange && (e.Actor == nil || e.Actor.Via != "socket") {
			t.Errorf("event %+v: want it made through the socket", e)
		}
	}
	checkTOTPAudit(t, filepath.Join(c.dir, "audit.log"), outs)
	for _, o := range outs {
		noSecretAt(t, "the database file", c.bolt, o)
		for _, l := range logs {
			noSecretIn(t, "the server log", []byte(l), o)
		}
	}
}

// Removing the authenticator app leaves passkeys, and the recovery codes
// with them (they still stand in for a factor).
func TestUsersTOTPRemoveKeepsPasskeys(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), appConfig)
	startServer(t, c).stop(t)
	parseTOTPAdd(t, runCLI(t, "", "users", "totp", "add", "alice", "--config", c.path).ok(t), "alice", false, true)
	withStore(t, c, func(s *bolt.Store) {
		u, err := s.GetUserByUsername(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateFactors(t.Context(), u.ID, func(f storage.Factors) (storage.Factors, error) {
			f.Passkeys = append(f.Passkeys, storage.Passkey{ID: []byte{1, 2}, Name: "Key", CredentialSealed: []byte("sealed"), CreatedAt: time.Now()})
			return f, nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	if mfaCol, _ := usersListMFA(t, c, "alice"); mfaCol != "totp,passkeys=1" {
		t.Errorf("MFA column %q", mfaCol)
	}
	runCLI(t, "", "users", "totp", "remove", "alice", "--config", c.path).ok(t)
	f, _, err := storedFactors(t, c, "alice")
	if err != nil || f.TOTP != nil || len(f.Passkeys) != 1 || len(f.RecoveryCodes) != mfa.RecoveryCodeCount {
		t.Fatalf("after remove: %+v, %v; want the passkey and the codes kept", f, err)
	}
	// A new app beside a passkey is not a first factor: no new codes.
	parseTOTPAdd(t, runCLI(t, "", "users", "totp", "add", "alice", "--config", c.path).ok(t), "alice", false, false)
	if o := runCLI(t, "", "users", "mfa", "reset", "alice", "--config", c.path).ok(t); o != "removed every second factor of alice (totp, 1 passkey, 10 recovery codes)\n" {
		t.Errorf("reset printed %q", o)
	}
}

// On PostgreSQL the CLI always works on the database, beside the running
// server, with the keys from the database's keyring.
func TestUsersTOTPOnPostgres(t *testing.T) {
	t.Parallel()
	c := writePGConfig(t, freePort(t), pgtest.Shared(t).NewDatabase(t), newEncryptionKey(), appConfig+"audit:\n  file: audit.log\n")
	c.dir = filepath.Dir(c.path)
	s := startServer(t, c)
	outs := testTOTPVerbs(t, c, func() {}, func() {})
	s.stop(t)
	checkTOTPAudit(t, filepath.Join(c.dir, "audit.log"), outs)
	for _, o := range outs {
		noSecretIn(t, "the server log", []byte(s.stderr.String()), o)
	}
}
