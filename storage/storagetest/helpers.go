package storagetest

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

// now is the wall clock at the precision every backend keeps.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// created is a fixed timestamp for fields the store never interprets.
func created() time.Time {
	return time.Date(2024, 5, 1, 12, 30, 0, 123456000, time.UTC)
}

func user(id, username string) storage.User {
	return storage.User{
		ID:       id,
		Username: username,
		Profile: storage.Profile{
			Email:         username + "@example.com",
			EmailVerified: true,
			Name:          "Name of " + username,
			GivenName:     "Given",
			FamilyName:    "Family",
			Groups:        []string{"staff", "admins"},
		},
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA",
		CreatedAt:    created(),
		UpdatedAt:    created().Add(time.Minute),
	}
}

func client(id string) storage.Client {
	return storage.Client{
		ID:         id,
		SecretHash: "$2a$10$hash-of-" + id,
		ClientSettings: storage.ClientSettings{
			Name:                    "Client " + id,
			RedirectURIs:            []string{"https://" + id + ".example/cb", "http://127.0.0.1/cb"},
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
			Scopes:                  []string{"openid", "profile", "email"},
			Audience:                []string{"https://api.example"},
			TokenEndpointAuthMethod: "client_secret_basic",
			AllowedOrigins:          []string{"https://" + id + ".example"},
			PostLogoutRedirectURIs:  []string{"https://" + id + ".example/bye"},
			AccessTokenFormat:       "jwt",
		},
		Metadata:  map[string]any{"software_id": "sw-" + id},
		Source:    "config",
		CreatedAt: created(),
		UpdatedAt: created(),
	}
}

// token is an active token request expiring an hour from now.
func token(kind storage.TokenKind, signature, requestID string) storage.TokenRequest {
	return storage.TokenRequest{
		Kind:            kind,
		Signature:       signature,
		RequestID:       requestID,
		ClientID:        "c-app",
		Subject:         "u-alice",
		RequestedAt:     created(),
		Scopes:          []string{"openid", "offline_access"},
		GrantedScopes:   []string{"openid"},
		Audience:        []string{"c-app"},
		GrantedAudience: []string{"c-app"},
		Form:            map[string][]string{"redirect_uri": {"https://app.example/cb"}, "state": {"xyz"}},
		Session:         []byte(`{"claims":{"sub":"u-alice"}}`),
		Active:          true,
		AccessSignature: "access-of-" + signature,
		ExpiresAt:       now().Add(time.Hour),
	}
}

func session(id, userID string) storage.BrowserSession {
	return storage.BrowserSession{
		ID:        id,
		UserID:    userID,
		SID:       "sid-" + id,
		AuthTime:  created(),
		Remember:  true,
		CreatedAt: created(),
		ExpiresAt: now().Add(time.Hour),
	}
}

// consent does not expire.
func consent(userID, clientID string) storage.Consent {
	return storage.Consent{
		UserID:    userID,
		ClientID:  clientID,
		Scopes:    []string{"openid", "profile"},
		GrantedAt: created(),
	}
}

func ok(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", what, err)
	}
}

func isErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one matching %q", what, err, target)
	}
}

// same fails t unless got and want are equal up to normalize.
func same[T any](t *testing.T, got, want T, what string) {
	t.Helper()
	if !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// Normalize returns a copy of v in which times are UTC without a monotonic
// reading and empty slices and maps are nil, so DeepEqual compares what a
// backend is expected to keep and nothing more. Tests of code built on a
// Store (storage/transfer) compare records with it too.
func Normalize[T any](v T) T {
	return normalizeValue(reflect.ValueOf(v)).Interface().(T)
}

func normalize[T any](v T) T { return Normalize(v) }

func normalizeValue(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return reflect.ValueOf(v.Interface().(time.Time).UTC())
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range out.NumField() {
			if f := out.Field(i); f.CanSet() {
				f.Set(normalizeValue(v.Field(i)))
			}
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(normalizeValue(v.Elem()))
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(normalizeValue(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
	}
	return v
}

// Lists come back in no promised order; tests sort before comparing.

func sortUsers(us []storage.User) {
	slices.SortFunc(us, func(a, b storage.User) int { return strings.Compare(a.ID, b.ID) })
}

func sortClients(cs []storage.Client) {
	slices.SortFunc(cs, func(a, b storage.Client) int { return strings.Compare(a.ID, b.ID) })
}

func sortConsents(cs []storage.Consent) {
	slices.SortFunc(cs, func(a, b storage.Consent) int { return strings.Compare(a.ClientID, b.ClientID) })
}
