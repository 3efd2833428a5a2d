package provider

import (
	"context"
	"net/http"
	"net/url"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/smallsso/provider/storage"
)

// fosite fetches a client's jwks_uri itself when it verifies a request
// object sent to the PAR endpoint, and would fetch a request_uri with its
// own HTTP client (retrying, following redirects). Both are routed through
// the outbound guard here, so no request to a client-chosen URL bypasses
// it.

// outboundClientKey carries, in a request's context, the stored client the
// request names, so fosite's fetches get that client's policy.
type outboundClientKey struct{}

func withOutboundClient(ctx context.Context, c storage.Client) context.Context {
	return context.WithValue(ctx, outboundClientKey{}, c)
}

// fositePolicy is the policy for a fetch fosite makes of location: the
// named client's when location is that client's own jwks_uri, the
// registered clients' otherwise (the strictest one a URL can get).
func (o *outbound) fositePolicy(ctx context.Context, location string) outboundPolicy {
	if c, ok := ctx.Value(outboundClientKey{}).(storage.Client); ok && c.JWKSURI == location {
		return o.policyForURL(c, location)
	}
	return o.policyForURL(storage.Client{Source: "registration"}, location)
}

// guardedJWKSFetcher is fosite's JWKSFetcherStrategy over the shared,
// guarded key-set cache (Resolve is in fositejose.go).
type guardedJWKSFetcher struct{ keys *remoteKeySets }

// fositeHTTPClient is fosite's HTTP client: no retries, and the guard.
func (o *outbound) fositeHTTPClient() *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.RetryMax = 0
	c.Logger = nil
	c.HTTPClient = &http.Client{
		Timeout: requestURITimeout,
		Transport: roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			// Only request_uri fetches use it, which the provider resolves
			// itself first (requestobject.go); should one get here, it gets
			// the registered clients' policy.
			policy := o.policyFor(storage.Client{Source: "registration"}, req.URL)
			return o.client(policy, requestURITimeout).Transport.RoundTrip(req)
		}),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// withClaimedClient puts the client a token-endpoint-style request names
// (client_id, or the HTTP Basic user) into ctx for fositePolicy. fosite
// authenticates that client before it fetches anything.
func (p *Provider) withClaimedClient(ctx context.Context, r *http.Request) context.Context {
	id := r.Form.Get("client_id")
	if user, _, ok := r.BasicAuth(); ok {
		u, err := url.QueryUnescape(user)
		if err != nil || (id != "" && u != id) {
			return ctx // two names: neither client's policy applies
		}
		id = u
	}
	if id == "" {
		return ctx
	}
	c, err := p.store.GetClient(ctx, id)
	if err != nil {
		return ctx
	}
	return withOutboundClient(ctx, c)
}
