package provider

import (
	"reflect"
	"slices"
	"testing"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/templates"
)

// The grant types discovery advertises and the token endpoint accepts come
// from fositeHandlers, the table whose factories fosite composes: every
// grant of the table is advertised and nothing else is, in today's order.
func TestGrantTypesFromFositeHandlers(t *testing.T) {
	t.Parallel()
	p, _, _ := signingFixture(t)
	pages, err := templates.New(templates.Embedded())
	if err != nil {
		t.Fatal(err)
	}
	p.ui.Store(&uiSettings{pages: pages})
	advertised := p.discovery().GrantTypesSupported

	want := []string{"authorization_code", "refresh_token", "client_credentials", "password", clientspec.GrantJWTBearer, "implicit"}
	if !slices.Equal(advertised, want) {
		t.Errorf("grant_types_supported = %v, want %v", advertised, want)
	}

	var tokenGrants, tableGrants []string
	for i, h := range fositeHandlers {
		if h.factory == nil {
			t.Errorf("row %d has no factory", i)
		}
		if h.tokenGrant != "" && h.authorizeGrant != "" {
			t.Errorf("row %d names two grants", i)
		}
		if h.tokenGrant != "" {
			tokenGrants = append(tokenGrants, h.tokenGrant)
			tableGrants = append(tableGrants, h.tokenGrant)
		}
		if h.authorizeGrant != "" {
			tableGrants = append(tableGrants, h.authorizeGrant)
		}
	}
	for _, g := range tableGrants {
		if !slices.Contains(advertised, g) {
			t.Errorf("%s is composed but not advertised", g)
		}
	}
	for _, g := range advertised {
		if !slices.Contains(tableGrants, g) {
			t.Errorf("%s is advertised but no handler serves it", g)
		}
	}
	if len(tableGrants) != len(advertised) {
		t.Errorf("advertised %v, table has %v", advertised, tableGrants)
	}

	// The token endpoint's list is the table's token grants: "implicit"
	// stays an unsupported grant_type there.
	if !slices.Equal([]string(supportedGrantTypes), tokenGrants) || supportedGrantTypes.Has("implicit") {
		t.Errorf("supportedGrantTypes = %v, want %v", supportedGrantTypes, tokenGrants)
	}

	// fosite is composed with the table's factories, in its order.
	if len(handlerFactories) != len(fositeHandlers) {
		t.Fatalf("%d factories, %d rows", len(handlerFactories), len(fositeHandlers))
	}
	for i, f := range handlerFactories {
		if reflect.ValueOf(f).Pointer() != reflect.ValueOf(fositeHandlers[i].factory).Pointer() {
			t.Errorf("factory %d is not row %d's", i, i)
		}
	}
}

// clientspec.Grants is what a client may declare; it must be exactly what
// the composed handlers serve, or a client could be given a grant that
// does not work (or be refused one that does).
func TestDeclarableGrantsAreComposed(t *testing.T) {
	t.Parallel()
	composed := grantTypesSupported()
	if !sameSet(clientspec.Grants, composed) {
		t.Errorf("clientspec.Grants = %v, composed handlers serve %v", clientspec.Grants, composed)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
