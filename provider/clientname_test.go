package provider_test

import (
	"context"
	"testing"
	"time"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// An openly registered client cannot pass for one of the organisation's
// own: invisible and formatting characters are refused in client_name,
// and names are compared after NFKC, case folding and dropping white
// space, against what the pages show (the name, or the ID of a client
// without one), including clients registered with the initial access
// token.
func TestOpenRegistrationClientNameLookalikes(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withOpenRegistration())
	ts.addClient(t, clientspec.Spec{ID: "cli-app", Secret: "cli-app-secret-0123456789", ClientSettings: storage.ClientSettings{Name: "Payroll", RedirectURIs: []string{webRedirect}}})
	ts.addClient(t, clientspec.Spec{ID: "grafana", Secret: "grafana-secret-0123456789", ClientSettings: storage.ClientSettings{RedirectURIs: []string{webRedirect}}})
	// As if registered with the initial access token before the operator
	// opened registration.
	now := time.Now().UTC()
	if err := ts.Store.CreateClient(context.Background(), storage.Client{ID: "billing-id", ClientSettings: storage.ClientSettings{Name: "Billing", RedirectURIs: []string{webRedirect}},
		Source: "registration", RegisteredWithToken: true, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	reg := func(name string) map[string]any {
		return map[string]any{"redirect_uris": []string{webRedirect}, "client_name": name}
	}
	for _, name := range []string{
		"Payroll\u200b", "Pay\u00adroll", "Payroll\u202e", "\u2067Payroll\u2069", "Pay\u200droll", "Pay\ufeffroll",
		"Pay  roll", "Pay roll", "Pay\u00a0roll", "Ｐａｙｒｏｌｌ", "PAYROLL", "pay\troll",
		"grafana", "Grafana", "GRAF ANA",
		"Web App", "WebApp", "ｗｅｂ　ａｐｐ",
		"billing", "Bil ling",
	} {
		wantRegistrationRefused(t, ts, reg(name), "invalid_client_metadata")
	}
	// Other names stay free, and so do those of openly registered clients.
	ts.register(t, reg("Payroll Helper"), "")
	ts.register(t, reg("Grafana Dashboards"), "")
	ts.register(t, reg("Ünïcödé Straße"), "")
	ts.register(t, reg("Stranger"), "")
	ts.register(t, reg("STRANGER"), "")
}
