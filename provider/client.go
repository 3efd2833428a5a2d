package provider

import (
	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// client is the fosite view of a stored client.
type client struct {
	*fosite.DefaultOpenIDConnectClient
	name string
	// rec is the stored client, for the settings fosite has no field for.
	rec storage.Client
	// authorize is the authorization request the client was looked up
	// for, if any (see redirect.go).
	authorize *fosite.AuthorizeRequest
}

var _ fosite.OpenIDConnectClient = (*client)(nil)

func newClient(c storage.Client) *client {
	method := c.TokenEndpointAuthMethod
	if method == "" {
		method = clientspec.DefaultAuthMethod(c.Public)
	}
	return &client{
		name: c.Name,
		rec:  c,
		DefaultOpenIDConnectClient: &fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				ID:            c.ID,
				Secret:        []byte(c.SecretHash),
				RedirectURIs:  c.RedirectURIs,
				GrantTypes:    c.GrantTypes,
				ResponseTypes: c.ResponseTypes,
				Scopes:        c.Scopes,
				Audience:      c.Audience,
				Public:        c.Public,
			},
			TokenEndpointAuthMethod: method,
		},
	}
}

// displayName is what people see for the client on the consent page.
func (c *client) displayName() string {
	if c.name != "" {
		return c.name
	}
	return c.ID
}

// GetJSONWebKeys is in fositejose.go.

func (c *client) GetJSONWebKeysURI() string { return c.rec.JWKSURI }

// GetTokenEndpointAuthSigningAlgorithm is the pinned assertion algorithm,
// empty when any supported one is accepted (fosite's default client would
// claim RS256).
func (c *client) GetTokenEndpointAuthSigningAlgorithm() string {
	return c.rec.TokenEndpointAuthSigningAlg
}
