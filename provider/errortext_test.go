package provider_test

// Issue 11, item 10: no library error text reaches a client; the detail
// goes to the log.

import (
	"net/http"
	"strings"
	"testing"
)

func TestRegistrationErrorsHaveNoLibraryText(t *testing.T) {
	t.Parallel()
	ts, logs := newLoggedServer(t, withRegistration(""))
	for _, jwks := range []string{
		`{"keys":[{"kty":"zz"}]}`,                                 // go-jose: unsupported key type/format
		`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`, // go-jose: invalid EC public key
		`{"keys":[{"kty":"EC","crv":"P-999","x":"AA","y":"AA"}]}`, // go-jose: unsupported elliptic curve
		`{"keys":"x"}`, // json: cannot unmarshal string into Go struct field
		`{"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]}`,                // illegal base64 data
		`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","x5c":["!!"]}]}`, // go-jose: failed to unmarshal x5c field
	} {
		body := []byte(`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":` + jwks + `}`)
		status, _, resp := sendJSON(t, http.MethodPost, ts.URL+"/register", body, "")
		desc, _ := resp["error_description"].(string)
		if status != http.StatusBadRequest || resp["error"] != "invalid_client_metadata" || !strings.HasPrefix(desc, "jwks: not a JSON Web Key Set, or one of its keys cannot be read") {
			t.Errorf("jwks %s: HTTP %d %v, want our own invalid_client_metadata", jwks, status, resp)
		}
		if m := libraryText(desc); m != "" {
			t.Errorf("jwks %s: description %q shows library text %q", jwks, desc, m)
		}
	}
	// The library's words are in the log, for the operator.
	if !strings.Contains(logs.String(), "go-jose") {
		t.Errorf("the log does not have the library's detail:\n%s", logs)
	}
}
