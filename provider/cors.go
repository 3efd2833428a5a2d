package provider

// CORS for browser apps (single-page apps using the code flow with PKCE),
// as Hydra and Keycloak do it: the endpoints a browser app calls with
// fetch() answer cross-origin requests from the origins registered for
// some client. Those are a client's allowed_origins, or when it has none,
// the origins of its http(s) redirect URIs.
//
// Covered: token, userinfo, revocation, JWKS and both discovery documents.
// Not covered: introspection, which serves resource servers (RFC 7662) and
// needs a client secret that has no place in a browser; and the
// authorization, login and consent endpoints, which are navigations, not
// fetches. No Access-Control-Allow-Credentials: these endpoints take bearer
// tokens and client credentials in headers or the body, never cookies.

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// defaultCORSOriginsTTL bounds how long a client added or changed at run
// time (CLI, admin socket, another replica) waits for its origins to be
// honoured: replicas pick up changes within a second.
const defaultCORSOriginsTTL = time.Second

// corsMaxAge is how long a browser may reuse a preflight answer.
const corsMaxAge = 10 * time.Minute

// corsPaths are the endpoints browser apps may call cross-origin; the value
// says whether the response headers a script may read include
// WWW-Authenticate (RFC 6750 §3 errors at userinfo).
var corsPaths = map[string]bool{
	"/token":                            false,
	"/userinfo":                         true,
	"/revoke":                           false,
	"/jwks":                             false,
	"/.well-known/openid-configuration": false,
	"/.well-known/oauth-authorization-server": false,
}

// newCORS builds the two middlewares corsPaths needs.
func (p *Provider) newCORS() (plain, exposeAuth *cors.Cors) {
	opts := cors.Options{
		AllowOriginVaryRequestFunc: func(r *http.Request, origin string) (bool, []string) {
			return p.corsOrigins.allowed(r.Context(), origin), nil
		},
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: []string{"Authorization", "Content-Type"},
		MaxAge:         int(corsMaxAge.Seconds()),
	}
	plain = cors.New(opts)
	opts.ExposedHeaders = []string{"WWW-Authenticate"}
	return plain, cors.New(opts)
}

// withCORS wraps h, a handler for methods, in c. An OPTIONS request that is
// not a preflight (rs/cors passes those on) is answered with Allow, rather
// than reaching a handler that only knows GET or POST.
func withCORS(c *cors.Cors, methods []string, h http.Handler) http.Handler {
	allow := strings.Join(append([]string{http.MethodOptions}, methods...), ", ")
	return c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.Header().Set("Allow", allow)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// originSet is the union of the clients' CORS origins, reloaded from the
// store at most once per ttl: clients change at run time through the CLI
// and the admin socket, and a short delay is cheaper than listing every
// client on every cross-origin request.
type originSet struct {
	store storage.Store
	ttl   time.Duration
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex
	origins map[string]bool
	loaded  time.Time
}

func (o *originSet) allowed(ctx context.Context, origin string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if now := o.now(); o.origins == nil || now.Sub(o.loaded) >= o.ttl || now.Before(o.loaded) {
		cs, err := o.store.ListClients(ctx)
		if err != nil {
			// Keep answering with the last good set; the next request
			// tries again.
			o.log.ErrorContext(ctx, "cors: list clients", slog.String("err", err.Error()))
		} else {
			o.origins, o.loaded = clientOrigins(cs), now
		}
	}
	return o.origins[origin]
}

// clientOrigins is the union of every client's allowed origins, where a
// client without any contributes the origins of its redirect URIs.
func clientOrigins(cs []storage.Client) map[string]bool {
	set := map[string]bool{}
	for _, c := range cs {
		list := c.AllowedOrigins
		if len(list) == 0 {
			list = c.RedirectURIs
		}
		for _, raw := range list {
			if o, ok := clientspec.WebOrigin(raw); ok {
				set[o] = true
			}
		}
	}
	return set
}
