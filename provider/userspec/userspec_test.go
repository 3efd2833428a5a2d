package userspec

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"
)

// validHash is one argon2id hash, computed once: hashing is slow on purpose.
var validHash = sync.OnceValue(func() string {
	h, err := secret.Hash("correct horse battery")
	if err != nil {
		panic(err)
	}
	return h
})

// bcryptHash is what `htpasswd -B` gives an operator, at the lowest cost.
var bcryptHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := func(mod func(*User)) User {
		u := User{Username: "alice", Password: "long enough"}
		if mod != nil {
			mod(&u)
		}
		return u
	}
	tests := []struct {
		name       string
		in         User
		field      string // "" with problem == "" means valid
		problem    string // substring of the problem
		wantGroups []string
	}{
		{name: "minimal", in: ok(nil)},
		{name: "hash instead of password", in: User{Username: "alice", PasswordHash: validHash()}},
		{name: "bcrypt hash", in: User{Username: "alice", PasswordHash: bcryptHash()}},
		{name: "bcrypt hash with a bad cost", in: User{Username: "alice", PasswordHash: "$2y$99$" + bcryptHash()[7:]}, field: "password_hash"},
		{name: "full profile", in: ok(func(u *User) {
			u.Email, u.EmailVerified, u.Name, u.GivenName, u.FamilyName = "alice@example.org", true, "Alice A", "Alice", "A"
			u.PhoneNumber, u.PhoneNumberVerified = "+1 (425) 555-1212 ext. 12", true
			u.Address = &storage.Address{Locality: "Paris"}
		})},
		{name: "username missing", in: ok(func(u *User) { u.Username = "" }), field: "username", problem: "is required"},
		{name: "username with space", in: ok(func(u *User) { u.Username = "alice b" }), field: "username", problem: "spaces"},
		{name: "username with leading space", in: ok(func(u *User) { u.Username = " alice" }), field: "username", problem: "spaces"},
		{name: "username with tab", in: ok(func(u *User) { u.Username = "alice\tb" }), field: "username", problem: "spaces"},
		{name: "username with no-break space", in: ok(func(u *User) { u.Username = "alice\u00a0b" }), field: "username", problem: "spaces"},
		{name: "username with control char", in: ok(func(u *User) { u.Username = "alice\x00" }), field: "username", problem: "control"},
		{name: "username invalid utf-8", in: ok(func(u *User) { u.Username = "alice\xff" }), field: "username", problem: "UTF-8"},
		{name: "username at bound", in: ok(func(u *User) { u.Username = strings.Repeat("a", UsernameMaxBytes) })},
		{name: "username too long", in: ok(func(u *User) { u.Username = strings.Repeat("a", UsernameMaxBytes+1) }), field: "username", problem: "at most 256 bytes"},
		{name: "unicode username", in: ok(func(u *User) { u.Username = "zoë" })},
		{name: "email-like username", in: ok(func(u *User) { u.Username = "alice@example.org" })},
		{name: "both password and hash", in: ok(func(u *User) { u.PasswordHash = validHash() }), field: "", problem: "give password or password_hash, not both"},
		{name: "neither password nor hash", in: ok(func(u *User) { u.Password = "" }), field: "", problem: "password or password_hash is required"},
		{name: "short password", in: ok(func(u *User) { u.Password = "1234567" }), field: "password", problem: "at least 8 characters"},
		{name: "password of 8 characters", in: ok(func(u *User) { u.Password = "12345678" })},
		{name: "short password counted in characters", in: ok(func(u *User) { u.Password = "ééééééé" }), field: "password", problem: "at least 8 characters"},
		{name: "password too long", in: ok(func(u *User) { u.Password = strings.Repeat("a", PasswordMaxBytes+1) }), field: "password", problem: "at most 1024 bytes"},
		{name: "password at byte bound", in: ok(func(u *User) { u.Password = strings.Repeat("a", PasswordMaxBytes) })},
		{name: "bad hash", in: User{Username: "alice", PasswordHash: "plaintext"}, field: "password_hash", problem: "not an argon2id or bcrypt hash"},
		{name: "truncated argon2id hash", in: User{Username: "alice", PasswordHash: "$argon2id$v=19$m=19456"}, field: "password_hash"},
		{name: "email without domain", in: ok(func(u *User) { u.Email = "alice" }), field: "email", problem: "not a plain address"},
		{name: "email with display name", in: ok(func(u *User) { u.Email = "Alice <a@b.org>" }), field: "email", problem: "not a plain address"},
		{name: "email in brackets", in: ok(func(u *User) { u.Email = "<a@b.org>" }), field: "email", problem: "not a plain address"},
		{name: "email with trailing word", in: ok(func(u *User) { u.Email = "a@b.org x" }), field: "email", problem: "not a plain address"},
		{name: "email with comment", in: ok(func(u *User) { u.Email = "a@b.org (work)" }), field: "email", problem: "not a plain address"},
		{name: "email with spaces around", in: ok(func(u *User) { u.Email = " a@b.org" }), field: "email", problem: "not a plain address"},
		{name: "two emails", in: ok(func(u *User) { u.Email = "a@b.org, c@d.org" }), field: "email", problem: "not a plain address"},
		{name: "email too long", in: ok(func(u *User) { u.Email = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 190) + ".org" }), field: "email", problem: "at most 254 bytes"},
		{name: "email plus tag", in: ok(func(u *User) { u.Email = "alice+sso@mail.example.org" })},
		{name: "groups from a comma-separated flag", in: ok(func(u *User) { u.Groups = []string{"a", " b"} }), wantGroups: []string{"a", "b"}},
		{name: "groups trimmed, empty and repeated dropped", in: ok(func(u *User) { u.Groups = []string{" admins ", "", "  ", "dev", "admins", "dev "} }), wantGroups: []string{"admins", "dev"}},
		{name: "group with inner space kept", in: ok(func(u *User) { u.Groups = []string{"site admins"} }), wantGroups: []string{"site admins"}},
		{name: "only empty groups", in: ok(func(u *User) { u.Groups = []string{"", " "} }), wantGroups: nil},
		{name: "group with comma", in: ok(func(u *User) { u.Groups = []string{"a, b"} }), field: "groups", problem: "must not contain a comma"},
		{name: "group with newline", in: ok(func(u *User) { u.Groups = []string{"a\nb"} }), field: "groups", problem: "control characters"},
		{name: "group too long", in: ok(func(u *User) { u.Groups = []string{strings.Repeat("g", GroupMaxBytes+1)} }), field: "groups", problem: "at most 256 bytes"},
		{name: "phone number too long", in: ok(func(u *User) { u.PhoneNumber = strings.Repeat("1", PhoneNumberMaxBytes+1) }), field: "phone_number", problem: "at most 64 bytes"},
		{name: "phone number with newline", in: ok(func(u *User) { u.PhoneNumber = "+33 1\n23" }), field: "phone_number", problem: "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.in.Validate()
			if tt.field == "" && tt.problem == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want no error", err)
				}
				want := tt.in
				want.Groups = tt.wantGroups
				if tt.wantGroups == nil && tt.in.Groups == nil {
					want.Groups = nil
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("Validate() = %+v, want %+v", got, want)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() error = %v (%T), want *FieldError", err, err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Problem, tt.problem) {
				t.Fatalf("Validate() = {%q, %q}, want field %q, problem containing %q", fe.Field, fe.Problem, tt.field, tt.problem)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error %q is not one line", err)
			}
			if !reflect.DeepEqual(got, User{}) {
				t.Fatalf("Validate() returned %+v with an error, want the zero User", got)
			}
		})
	}
}

func TestValidateDoesNotAliasGroups(t *testing.T) {
	t.Parallel()
	in := User{Username: "alice", Password: "long enough", Profile: storage.Profile{Groups: []string{" a", "b"}}}
	got, err := in.Validate()
	if err != nil {
		t.Fatal(err)
	}
	got.Groups[0] = "changed"
	if in.Groups[0] != " a" {
		t.Fatalf("input groups changed to %q", in.Groups)
	}
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p, want string
	}{
		{"12345678", ""},
		{"correct horse battery staple", ""},
		{"", "password must be at least 8 characters"},
		{"1234567", "password must be at least 8 characters"},
		{"ééééééé", "password must be at least 8 characters"}, // 14 bytes, 7 characters
		{"éééééééé", ""},
		{strings.Repeat("x", PasswordMaxBytes), ""},
		{strings.Repeat("x", PasswordMaxBytes+1), "password must be at most 1024 bytes"},
	}
	for _, tt := range tests {
		err := CheckPassword(tt.p)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("CheckPassword(%d bytes) = %q, want %q", len(tt.p), got, tt.want)
		}
	}
}

func TestPolicyValues(t *testing.T) {
	t.Parallel()
	// The account page's values when the policy moved here; changing them
	// changes what every surface accepts.
	if PasswordMinLength != 8 || PasswordMaxBytes != 1024 {
		t.Fatalf("policy = %d..%d, want 8 characters..1024 bytes", PasswordMinLength, PasswordMaxBytes)
	}
}

func TestFieldErrorString(t *testing.T) {
	t.Parallel()
	if got := (&FieldError{Field: "email", Problem: "is bad"}).Error(); got != "email: is bad" {
		t.Errorf("got %q", got)
	}
	if got := (&FieldError{Problem: "give password or password_hash, not both"}).Error(); got != "give password or password_hash, not both" {
		t.Errorf("got %q", got)
	}
	_, err := User{Username: "alice", Password: "short"}.Validate()
	if got := err.Error(); got != "password: must be at least 8 characters" {
		t.Errorf("Validate error = %q", got)
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := created.Add(48 * time.Hour)
	addr := &storage.Address{Locality: "Paris", Country: "FR"}
	u := User{
		Username: "alice", Password: "ignored by Apply", Profile: storage.Profile{
			Email:               "alice@example.org",
			EmailVerified:       true,
			Name:                "Alice A",
			GivenName:           "Alice",
			FamilyName:          "A",
			Groups:              []string{"a", "b"},
			PhoneNumber:         "+33 1 23",
			PhoneNumberVerified: true,
			Address:             addr,
		},
	}
	want := storage.User{
		ID: "sub-1", Username: "alice", Profile: storage.Profile{
			Email:               "alice@example.org",
			EmailVerified:       true,
			Name:                "Alice A",
			GivenName:           "Alice",
			FamilyName:          "A",
			Groups:              []string{"a", "b"},
			PhoneNumber:         "+33 1 23",
			PhoneNumberVerified: true,
			Address:             &storage.Address{Locality: "Paris", Country: "FR"},
		},
		PasswordHash: "HASH", CreatedAt: now, UpdatedAt: now,
	}

	t.Run("create", func(t *testing.T) {
		t.Parallel()
		got := u.Apply(storage.User{ID: "sub-1"}, "HASH", now)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Apply = %+v\nwant %+v", got, want)
		}
		got.Groups[0], got.Address.Locality = "x", "x"
		if u.Groups[0] != "a" || addr.Locality != "Paris" {
			t.Fatal("the record shares memory with the spec")
		}
	})
	t.Run("update keeps ID and CreatedAt, replaces the profile", func(t *testing.T) {
		t.Parallel()
		old := storage.User{
			ID: "sub-1", Username: "alice", Profile: storage.Profile{
				Email:       "old@example.org",
				Name:        "Old",
				Groups:      []string{"old"},
				PhoneNumber: "0",
				Address:     &storage.Address{Formatted: "old"},
			}, PasswordHash: "OLD",
			CreatedAt: created, UpdatedAt: created,
		}
		got := u.Apply(old, "HASH", now)
		w := want
		w.CreatedAt = created
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("Apply = %+v\nwant %+v", got, w)
		}
	})
	t.Run("cleared fields are cleared", func(t *testing.T) {
		t.Parallel()
		old := storage.User{ID: "sub-1", Profile: storage.Profile{Email: "old@example.org", Groups: []string{"old"}, Address: &storage.Address{Formatted: "old"}}, CreatedAt: created}
		got := User{Username: "alice"}.Apply(old, "HASH", now)
		if got.Email != "" || got.Groups != nil || got.Address != nil || got.ID != "sub-1" || !got.CreatedAt.Equal(created) || !got.UpdatedAt.Equal(now) {
			t.Fatalf("Apply = %+v", got)
		}
	})
}

func TestResolveHash(t *testing.T) {
	t.Parallel()
	current := validHash() // of "correct horse battery"
	t.Run("declared hash is used as is", func(t *testing.T) {
		t.Parallel()
		got, err := User{PasswordHash: "$2y$04$declared"}.ResolveHash(current)
		if err != nil || got != "$2y$04$declared" {
			t.Fatalf("ResolveHash = %q, %v", got, err)
		}
	})
	t.Run("unchanged password keeps the stored hash", func(t *testing.T) {
		t.Parallel()
		got, err := User{Password: "correct horse battery"}.ResolveHash(current)
		if err != nil || got != current {
			t.Fatalf("ResolveHash = %q, %v; want the current hash", got, err)
		}
	})
	t.Run("changed password is hashed afresh", func(t *testing.T) {
		t.Parallel()
		got, err := User{Password: "another long one"}.ResolveHash(current)
		if err != nil || got == current || secret.Check(got, "another long one") != nil {
			t.Fatalf("ResolveHash = %q, %v", got, err)
		}
	})
	t.Run("new user", func(t *testing.T) {
		t.Parallel()
		got, err := User{Password: "another long one"}.ResolveHash("")
		if err != nil || secret.Check(got, "another long one") != nil {
			t.Fatalf("ResolveHash = %q, %v", got, err)
		}
	})
}

// The field names are a public contract: json for the admin socket (the
// former provider.NewUser), yaml for the config (the former UserSpec).
func TestWireNames(t *testing.T) {
	t.Parallel()
	full := User{
		Username: "u", Password: "p", PasswordHash: "h", Profile: storage.Profile{
			Email:               "e",
			EmailVerified:       true,
			Name:                "n",
			GivenName:           "g",
			FamilyName:          "f",
			Groups:              []string{"x"},
			PhoneNumber:         "1",
			PhoneNumberVerified: true,
			Address:             &storage.Address{Country: "FR"},
		},
	}
	names := []string{"username", "password", "password_hash", "email", "email_verified", "name", "given_name",
		"family_name", "groups", "phone_number", "phone_number_verified", "address"}
	slices.Sort(names)

	keys := func(t *testing.T, m map[string]any) []string {
		t.Helper()
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	t.Run("json", func(t *testing.T) {
		t.Parallel()
		b, err := json.Marshal(full)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if got := keys(t, m); !slices.Equal(got, names) {
			t.Fatalf("json keys = %v, want %v", got, names)
		}
		var back User
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, full) {
			t.Fatalf("json round trip = %+v, %v", back, err)
		}
		b, _ = json.Marshal(User{Username: "u"})
		if string(b) != `{"username":"u"}` {
			t.Fatalf("empty fields are not omitted: %s", b)
		}
	})
	t.Run("yaml", func(t *testing.T) {
		t.Parallel()
		b, err := yaml.Marshal(full)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if got := keys(t, m); !slices.Equal(got, names) {
			t.Fatalf("yaml keys = %v, want %v", got, names)
		}
		var back User
		if err := yaml.Unmarshal([]byte("username: alice\npassword_hash: $2y$04$x\ngroups: [a, b]\naddress:\n  postal_code: \"75001\"\n"), &back); err != nil {
			t.Fatal(err)
		}
		if back.Username != "alice" || back.PasswordHash != "$2y$04$x" || !slices.Equal(back.Groups, []string{"a", "b"}) || back.Address == nil || back.Address.PostalCode != "75001" {
			t.Fatalf("yaml decode = %+v", back)
		}
	})
}
