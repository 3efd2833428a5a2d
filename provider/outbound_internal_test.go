package provider

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// Outbound requests to client-chosen URLs dial loopback only when the
// registered URL names a loopback host, and never link-local (cloud
// metadata), multicast or unspecified addresses, whatever name led there.
func TestOutboundClientAddressGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x.y.")) }))
	defer srv.Close()
	loopback, _ := url.Parse(srv.URL)
	if resp, err := outboundClient(loopback, time.Second).Get(srv.URL); err != nil {
		t.Fatalf("registered loopback host: %v", err)
	} else {
		resp.Body.Close()
	}
	// A registered public name that leads to these addresses is refused.
	public, _ := url.Parse("https://rp.example.org/")
	for _, u := range []string{srv.URL, "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0:1/", "http://[::ffff:169.254.169.254]/"} {
		_, err := outboundClient(public, time.Second).Get(u)
		if !errors.Is(err, errForbiddenAddress) {
			t.Errorf("%s: err = %v, want the address refused", u, err)
		}
	}
	if _, err := outboundClient(loopback, time.Second).Get("http://169.254.169.254/"); !errors.Is(err, errForbiddenAddress) {
		t.Errorf("link-local with loopback allowed: %v", err)
	}
	// No redirect is followed: it would lead somewhere nobody registered.
	redirect := httptest.NewServer(http.RedirectHandler(srv.URL, http.StatusFound))
	defer redirect.Close()
	resp, err := outboundClient(loopback, time.Second).Get(redirect.URL)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect: %v %v, want the 302 itself", err, resp)
	}
	resp.Body.Close()
}
