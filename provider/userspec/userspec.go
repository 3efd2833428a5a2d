// Package userspec owns the one description of a user as an operator
// declares it, in the config's `users:` entries and through the CLI's
// `users add` (over the admin socket), together with the rules such a user
// must meet and its mapping onto storage.User. The password policy lives
// here too, so the account page, the config loader and the CLI refuse the
// same passwords.
//
// It imports only storage and provider/secret of this module; it must not
// import provider or provider/admin, which both use it.
package userspec

import (
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"
)

// Password policy, NIST SP 800-63B §5.1.1.2: at least 8 characters, no
// composition rules; the upper bound only caps the work a request can ask
// of the hash.
const (
	PasswordMinLength = 8    // characters (runes)
	PasswordMaxBytes  = 1024 // bytes
)

// Bounds on the other fields. They only keep nonsense (a pasted file, a
// runaway script) out of the store and out of ID tokens.
const (
	UsernameMaxBytes    = 256
	EmailMaxBytes       = 254 // RFC 5321 §4.5.3.1.3 path limit less the brackets
	GroupMaxBytes       = 256
	PhoneNumberMaxBytes = 64
)

// User is a user as an operator declares it. The json names are those of
// the admin socket, the yaml names those of the config: both are a public
// contract.
type User struct {
	Username     string `json:"username" yaml:"username"`
	Password     string `json:"password,omitempty" yaml:"password"`
	PasswordHash string `json:"password_hash,omitempty" yaml:"password_hash"`
	// Profile is stored as declared (storage.User embeds it too).
	storage.Profile `yaml:",inline"`
}

// FieldError is a problem with one field of a User. Field is the config
// key ("username", "password", "password_hash", "email", "groups",
// "phone_number"), so the config loader can prefix "users[i].". It is empty
// when the problem is the entry as a whole (password and password_hash
// both given, or neither).
type FieldError struct {
	Field   string
	Problem string
}

// Error is "field: problem", or the problem alone when Field is empty.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

func bad(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// passwordProblem says what is wrong with p, or "" when it meets the policy.
func passwordProblem(p string) string {
	switch {
	case utf8.RuneCountInString(p) < PasswordMinLength:
		return fmt.Sprintf("must be at least %d characters", PasswordMinLength)
	case len(p) > PasswordMaxBytes:
		return fmt.Sprintf("must be at most %d bytes", PasswordMaxBytes)
	}
	return ""
}

// CheckPassword applies the password policy to a password an operator
// sets (config, `users add`, `users passwd`).
func CheckPassword(p string) error {
	if problem := passwordProblem(p); problem != "" {
		return errors.New("password " + problem)
	}
	return nil
}

// hasControl reports whether s holds a control character (newlines and
// tabs included).
func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// Validate checks u and returns it normalized (groups trimmed, empty and
// repeated ones dropped). The first problem found is returned as a
// *FieldError.
func (u User) Validate() (User, error) {
	switch {
	case u.Username == "":
		return User{}, bad("username", "is required")
	case len(u.Username) > UsernameMaxBytes:
		return User{}, bad("username", "must be at most %d bytes", UsernameMaxBytes)
	case !utf8.ValidString(u.Username):
		return User{}, bad("username", "must be valid UTF-8")
	case strings.ContainsFunc(u.Username, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return User{}, bad("username", "must not contain spaces or control characters")
	}
	switch {
	case u.Password != "" && u.PasswordHash != "":
		return User{}, bad("", "give password or password_hash, not both")
	case u.Password == "" && u.PasswordHash == "":
		return User{}, bad("", "password or password_hash is required")
	case u.Password != "":
		if problem := passwordProblem(u.Password); problem != "" {
			return User{}, bad("password", "%s", problem)
		}
	default:
		if err := secret.ValidHash(u.PasswordHash); err != nil {
			return User{}, bad("password_hash", "%v", err)
		}
	}
	if u.Email != "" {
		if len(u.Email) > EmailMaxBytes {
			return User{}, bad("email", "must be at most %d bytes", EmailMaxBytes)
		}
		a, err := mail.ParseAddress(u.Email)
		if err != nil || a.Name != "" || a.Address != u.Email {
			return User{}, bad("email", "%q is not a plain address like alice@example.org", u.Email)
		}
	}
	groups, err := normalizeGroups(u.Groups)
	if err != nil {
		return User{}, err
	}
	u.Groups = groups
	switch {
	case len(u.PhoneNumber) > PhoneNumberMaxBytes:
		return User{}, bad("phone_number", "must be at most %d bytes", PhoneNumberMaxBytes)
	case hasControl(u.PhoneNumber):
		return User{}, bad("phone_number", "must not contain control characters")
	}
	return u, nil
}

// normalizeGroups trims each group of spaces and drops empty and repeated
// ones, so "a, b" split at the comma becomes "a" and "b". A group holding a
// comma (it could not be given on the command line) or a control character
// is refused. No groups gives nil.
func normalizeGroups(in []string) ([]string, error) {
	var out []string
	for _, g := range in {
		g = strings.TrimSpace(g)
		switch {
		case g == "" || slices.Contains(out, g):
			continue
		case strings.Contains(g, ","):
			return nil, bad("groups", "%q must not contain a comma", g)
		case hasControl(g):
			return nil, bad("groups", "%q must not contain control characters", g)
		case len(g) > GroupMaxBytes:
			return nil, bad("groups", "a group must be at most %d bytes", GroupMaxBytes)
		}
		out = append(out, g)
	}
	return out, nil
}

// ResolveHash gives the password hash to store for u, given the hash
// stored today (current, "" for a new user): password_hash as declared;
// or, for a password, the current hash when it already matches (so a
// config reload does not rehash every user), else a fresh hash.
func (u User) ResolveHash(current string) (string, error) {
	if u.Password == "" {
		return u.PasswordHash, nil
	}
	if current != "" && secret.Check(current, u.Password) == nil {
		return current, nil
	}
	return secret.Hash(u.Password)
}

// Apply writes u's username and profile and passwordHash onto rec and
// stamps UpdatedAt with now; CreatedAt is set to now only when rec has
// none. rec.ID is kept: to create, pass storage.User{ID: newID}; to
// update, pass the stored record. Groups and Address are copied, so rec
// shares no memory with u.
func (u User) Apply(rec storage.User, passwordHash string, now time.Time) storage.User {
	rec.Username, rec.Profile = u.Username, u.Profile
	rec.Groups = slices.Clone(u.Groups)
	if u.Address != nil {
		a := *u.Address
		rec.Address = &a
	}
	rec.PasswordHash, rec.UpdatedAt = passwordHash, now
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = now
	}
	return rec
}
