package provider

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The request_uri fetcher dials loopback only for a registered loopback
// host, and never link-local (cloud metadata) or unspecified addresses,
// whatever name led there.
func TestRequestURIClientAddressGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x.y.")) }))
	defer srv.Close()
	if resp, err := requestURIClient(true).Get(srv.URL); err != nil {
		t.Fatalf("registered loopback host: %v", err)
	} else {
		resp.Body.Close()
	}
	for _, u := range []string{srv.URL, "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0:1/", "http://[::ffff:169.254.169.254]/"} {
		_, err := requestURIClient(false).Get(u)
		if !errors.Is(err, errForbiddenAddress) {
			t.Errorf("%s: err = %v, want the address refused", u, err)
		}
	}
	if _, err := requestURIClient(true).Get("http://169.254.169.254/"); !errors.Is(err, errForbiddenAddress) {
		t.Errorf("link-local with loopback allowed: %v", err)
	}
}
