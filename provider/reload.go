package provider

// What a configuration reload changes in a running provider. The pages'
// settings (organisation name, logo, colour, templates) and the trusted
// proxies are swapped whole behind atomic pointers: a request reads each
// once and sees either the old settings or the new ones, never half of
// each. Clients, users and trusted issuers live in the store, which the
// caller syncs in one transaction; ClientsChanged drops what the provider
// derived from the clients.

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"github.com/smallsso/provider/templates"
)

// UI is what of the pages a reload may change.
type UI struct {
	OrgName string
	// LogoURL is an https URL or a path below the issuer (LogoURLProblem).
	LogoURL string
	// PrimaryColor is a CSS hex colour; empty is the default.
	PrimaryColor string
	// Templates are the pages, with ui.templates_dir applied.
	Templates *templates.Set
}

// uiSettings is UI as the pages use it.
type uiSettings struct {
	orgName string
	logoURL string // as configured; see Provider.logoURL
	pages   *templates.Set
	static  http.Handler
	theme   templates.Theme
	// gen counts the settings a provider had, so the discovery document
	// (which lists the pages' languages) is rendered again after a change.
	gen uint64
}

func newUISettings(ui UI, gen uint64) (*uiSettings, error) {
	if problem := LogoURLProblem(ui.LogoURL); problem != "" {
		return nil, fmt.Errorf("provider: logo URL %s", problem)
	}
	theme, err := templates.NewTheme(ui.PrimaryColor)
	if err != nil {
		return nil, fmt.Errorf("provider: primary colour: %w", err)
	}
	if ui.Templates == nil {
		return nil, errors.New("provider: templates are required")
	}
	return &uiSettings{
		orgName: ui.OrgName, logoURL: ui.LogoURL, pages: ui.Templates,
		static: ui.Templates.Static(), theme: theme, gen: gen,
	}, nil
}

// SetUI replaces the pages' settings; requests already running finish
// with the settings they started with. On error nothing changes.
func (p *Provider) SetUI(ui UI) error {
	cur := p.ui.Load()
	next, err := newUISettings(ui, cur.gen+1)
	if err != nil {
		return err
	}
	// Reloads are serialised by the caller; a lost race would only skip
	// a generation number, which still differs from the old one.
	p.ui.CompareAndSwap(cur, next)
	return nil
}

// pages is the current page set.
func (p *Provider) pages() *templates.Set { return p.ui.Load().pages }

// staticFilesNow serves /static/ from the current page set.
func (p *Provider) staticFilesNow() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ui.Load().static.ServeHTTP(w, r)
	})
}

// uiVersion names the settings the discovery document was rendered with.
func (p *Provider) uiVersion() string { return strconv.FormatUint(p.ui.Load().gen, 10) }

// SetTrustedProxies replaces the reverse proxies whose forwarding headers
// are believed (see clientIP).
func (p *Provider) SetTrustedProxies(proxies []netip.Prefix) {
	proxies = slices.Clone(proxies)
	p.proxies.Store(&proxies)
}

// trustedProxies is the current list: Config.TrustedProxies until the
// first SetTrustedProxies.
func (p *Provider) trustedProxies() []netip.Prefix {
	if l := p.proxies.Load(); l != nil {
		return *l
	}
	return p.cfg.TrustedProxies
}

// ClientsChanged tells the provider that clients were added, changed or
// removed behind its back (a config reload, the admin socket): the CORS
// origins are listed again on the next cross-origin request instead of
// after their TTL, and the token endpoint's rate-limit buckets start over
// (ratelimit.go).
// Everything else it knows of a client is read from the store per request
// (the store's decoded records are checked against the stored bytes, and
// the secret memo is keyed by the stored hash), so nothing else is stale.
func (p *Provider) ClientsChanged() {
	p.corsOrigins.invalidate()
	p.tokenLimits.reset()
}

// invalidate makes the next request list the clients again.
func (o *originSet) invalidate() {
	o.mu.Lock()
	o.origins = nil
	o.mu.Unlock()
}
