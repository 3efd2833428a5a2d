package oidcctest

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// ScopeClaims are the claims VerifyScopesReturnedInUserInfoClaims expects
// for each scope (checklist §3.3).
var ScopeClaims = map[string][]string{
	"profile": {"name", "given_name", "family_name", "middle_name", "nickname", "profile", "picture", "website",
		"gender", "birthdate", "zoneinfo", "locale", "updated_at", "preferred_username"},
	"email":   {"email", "email_verified"},
	"address": {"address"},
	"phone":   {"phone_number", "phone_number_verified"},
}

// MissingScopeClaims is VerifyScopesReturnedInUserInfoClaims, a WARNING in
// the suite: the claims of the scopes in scope that claims lacks.
func MissingScopeClaims(scope string, claims map[string]any) []string {
	var missing []string
	for _, s := range strings.Fields(scope) {
		for _, c := range ScopeClaims[s] {
			if _, ok := claims[c]; !ok {
				missing = append(missing, c)
			}
		}
	}
	slices.Sort(missing)
	return missing
}

// CheckScopesSupported is OIDCCCheckScopesSupportedContainScopeTest: a
// scope module is skipped unless scopes_supported lists every scope it
// asks for; for our tests a skip is a failure.
func (op *OP) CheckScopesSupported(t testing.TB, scope string) {
	t.Helper()
	supported := op.Strings("scopes_supported")
	for _, s := range strings.Fields(scope) {
		if !slices.Contains(supported, s) {
			t.Fatalf("OIDCCCheckScopesSupportedContainScopeTest: scopes_supported %v lacks %q (the module would be skipped)", supported, s)
		}
	}
}

// AuthTime returns the auth_time claim, failing the test when it is
// absent (CheckIdTokenAuthTimeClaimPresentDueToMaxAge: an ID token issued
// for a request with max_age must carry it).
func (tok *IDToken) AuthTime(t testing.TB) time.Time {
	t.Helper()
	n, ok := tok.Num("auth_time")
	if !ok {
		t.Fatalf("CheckIdTokenAuthTimeClaimPresentDueToMaxAge: the id_token has no auth_time")
	}
	return time.Unix(int64(n), 0)
}

// PromptNoneErrors are the errors CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface
// accepts from a prompt=none request that cannot be answered silently.
var PromptNoneErrors = []string{"login_required", "interaction_required", "account_selection_required", "consent_required"}
