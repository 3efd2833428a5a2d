package provider

// Discovery metadata: OpenID Connect Discovery 1.0 §3 and RFC 8414 §2. It
// advertises exactly what fositeHandlers composes, nothing more.

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/mfa"
)

type discoveryDoc struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	UserinfoSigningAlgValuesSupported          []string `json:"userinfo_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgValues     []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigningAlgValues  []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	ACRValuesSupported                         []string `json:"acr_values_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
	RequireRequestURIRegistration              bool     `json:"require_request_uri_registration"`
	RequestObjectSigningAlgValuesSupported     []string `json:"request_object_signing_alg_values_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint"`
	// RequirePushedAuthorizationRequests is false: PAR is required per
	// client (require_pushed_authorization_requests), not for everyone.
	RequirePushedAuthorizationRequests bool `json:"require_pushed_authorization_requests"`
	// Logout (RP-Initiated, Back-Channel and Front-Channel Logout 1.0).
	EndSessionEndpoint                 string `json:"end_session_endpoint"`
	BackchannelLogoutSupported         bool   `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported  bool   `json:"backchannel_logout_session_supported"`
	FrontchannelLogoutSupported        bool   `json:"frontchannel_logout_supported"`
	FrontchannelLogoutSessionSupported bool   `json:"frontchannel_logout_session_supported"`
	// RegistrationEndpoint is published only when registration is enabled.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// UILocalesSupported are the languages of the pages (ui_locales).
	UILocalesSupported []string `json:"ui_locales_supported"`
}

func (p *Provider) discovery() discoveryDoc {
	// Every endpoint that authenticates clients uses clientAuthenticator.
	clientMethods := []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"}
	algs := clientspec.AssertionAlgNames()
	d := discoveryDoc{
		Issuer:                                     p.cfg.Issuer,
		AuthorizationEndpoint:                      p.url("/authorize"),
		TokenEndpoint:                              p.url("/token"),
		UserinfoEndpoint:                           p.url("/userinfo"),
		JWKSURI:                                    p.url("/jwks"),
		RevocationEndpoint:                         p.url("/revoke"),
		IntrospectionEndpoint:                      p.url("/introspect"),
		ScopesSupported:                            []string{"openid", "profile", "email", "address", "phone", "groups", "offline_access"},
		ResponseTypesSupported:                     clientspec.ResponseTypes(),
		ResponseModesSupported:                     responseModeNames(),
		GrantTypesSupported:                        grantTypesSupported(),
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           p.signingAlgs(),
		UserinfoSigningAlgValuesSupported:          p.signingAlgs(),
		TokenEndpointAuthMethodsSupported:          append(slices.Clone(clientMethods), "none"),
		TokenEndpointAuthSigningAlgValuesSupported: algs,
		RevocationEndpointAuthMethodsSupported:     append(slices.Clone(clientMethods), "none"),
		RevocationEndpointAuthSigningAlgValues:     algs,
		// RFC 7662 §2.1: introspection needs an authenticated client.
		IntrospectionEndpointAuthMethodsSupported:  clientMethods,
		IntrospectionEndpointAuthSigningAlgValues:  algs,
		CodeChallengeMethodsSupported:              []string{"S256"},
		ClaimsSupported:                            claimsSupported(),
		PromptValuesSupported:                      []string{"none", "login", "consent", "select_account"},
		ACRValuesSupported:                         mfa.ACRValues,
		ClaimsParameterSupported:                   true,
		AuthorizationResponseIssParameterSupported: true,
		RequestParameterSupported:                  true,
		RequestURIParameterSupported:               true,
		RequireRequestURIRegistration:              true,
		RequestObjectSigningAlgValuesSupported:     clientspec.RequestObjectAlgNames(),
		PushedAuthorizationRequestEndpoint:         p.url("/par"),
		EndSessionEndpoint:                         p.url("/logout"),
		BackchannelLogoutSupported:                 true,
		BackchannelLogoutSessionSupported:          true,
		FrontchannelLogoutSupported:                true,
		FrontchannelLogoutSessionSupported:         true,
		UILocalesSupported:                         p.pages().Languages(),
	}
	if p.cfg.Registration.Enabled {
		d.RegistrationEndpoint = p.url("/register")
	}
	return d
}

func (p *Provider) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	// Everything in the document is fixed when the provider is built but
	// the signing algorithms, which follow the active keys.
	algs := p.signingAlgs()
	doc, err := p.discoveryDoc.get(strings.Join(algs, " ")+" ui:"+p.uiVersion(), func() ([]byte, error) {
		d := p.discovery()
		d.IDTokenSigningAlgValuesSupported, d.UserinfoSigningAlgValuesSupported = algs, algs
		return json.Marshal(d)
	})
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	doc.serve(w, r, "public, max-age=300")
}

func (p *Provider) handleJWKS(w http.ResponseWriter, r *http.Request) {
	set := p.keys.JWKS()
	// A kid names one key for good (keys never reuses one for other
	// material), so the kids in order name the set: a rotation, a reload
	// or a retired key leaving the set changes them.
	var version strings.Builder
	for _, k := range set.Keys {
		version.WriteString(k.KeyID)
		version.WriteByte(' ')
		version.WriteString(k.Algorithm)
		version.WriteByte('\n')
	}
	doc, err := p.jwksDoc.get(version.String(), func() ([]byte, error) { return json.Marshal(set) })
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	// Short caching: a rotation must reach relying parties quickly.
	doc.serve(w, r, "public, max-age=60")
}
