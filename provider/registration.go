package provider

// Dynamic client registration: RFC 7591 (POST /register) with the metadata
// of OpenID Connect Dynamic Client Registration 1.0, and the RFC 7592 client
// configuration endpoint (GET, PUT, DELETE /register/{client_id}).
//
// Registration is off unless configured. When open (no initial access
// token), it is an unauthenticated write, so it is bounded (body size, list
// lengths, a per-address rate) and a registered client gets no more than a
// client anyone could create should have: only grants that need a person
// (authorization_code, refresh_token), only the scopes the provider
// publishes, no audiences. A client is built through clientspec.Spec.Validate
// like any other, so the rules are the same as for config and CLI clients.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/membudgets"
)

// RegistrationConfig is dynamic client registration.
type RegistrationConfig struct {
	// Enabled publishes registration_endpoint and answers at /register.
	Enabled bool
	// InitialAccessToken, when set, must be presented as a Bearer token to
	// register (RFC 7591 §3); without it registration is open to anyone.
	InitialAccessToken string
	// AllowedRedirectHosts are the hosts an openly registered client (no
	// initial access token) may name in redirect_uris and
	// post_logout_redirect_uris: host names or "*.example.org"; ["*"]
	// allows any. Empty allows none, except loopback hosts when the issuer
	// itself is loopback (local development).
	AllowedRedirectHosts []string
}

// Bounds on what one registration may carry. Real clients need a handful
// of each; the limits only stop a stranger from storing megabytes.
const (
	maxRegistrationList = 20
	maxMetadataString   = 2048
	// A conformance-suite run registers about 40 clients in a row from one
	// address; an abuser gets 50 at once, then one every 20 seconds.
	registrationBurst    = 50
	registrationInterval = 20 * time.Second
)

// privilegedGrants act without a person signing in. Open registration does
// not hand them out: a stranger's client could otherwise mint tokens
// (client_credentials), collect passwords (password) or exchange assertions
// (jwt-bearer). A client registered with the initial access token may.
var privilegedGrants = []string{"client_credentials", "password", clientspec.GrantJWTBearer}

// registrationMetadata is the client metadata of RFC 7591 §2 and OIDC
// Registration §2 that the provider understands. Unknown fields are ignored
// (RFC 7591 §2).
type registrationMetadata struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`

	RedirectURIs            []string        `json:"redirect_uris"`
	ResponseTypes           []string        `json:"response_types"`
	GrantTypes              []string        `json:"grant_types"`
	ApplicationType         string          `json:"application_type"`
	Contacts                []string        `json:"contacts"`
	ClientName              string          `json:"client_name"`
	LogoURI                 string          `json:"logo_uri"`
	ClientURI               string          `json:"client_uri"`
	PolicyURI               string          `json:"policy_uri"`
	TosURI                  string          `json:"tos_uri"`
	JWKSURI                 string          `json:"jwks_uri"`
	JWKS                    json.RawMessage `json:"jwks"`
	SectorIdentifierURI     string          `json:"sector_identifier_uri"`
	SubjectType             string          `json:"subject_type"`
	Scope                   string          `json:"scope"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	TokenEndpointAuthAlg    string          `json:"token_endpoint_auth_signing_alg"`

	IDTokenSignedResponseAlg     string   `json:"id_token_signed_response_alg"`
	IDTokenEncryptedResponseAlg  string   `json:"id_token_encrypted_response_alg"`
	IDTokenEncryptedResponseEnc  string   `json:"id_token_encrypted_response_enc"`
	UserinfoSignedResponseAlg    string   `json:"userinfo_signed_response_alg"`
	UserinfoEncryptedResponseAlg string   `json:"userinfo_encrypted_response_alg"`
	UserinfoEncryptedResponseEnc string   `json:"userinfo_encrypted_response_enc"`
	RequestObjectSigningAlg      string   `json:"request_object_signing_alg"`
	RequestObjectEncryptionAlg   string   `json:"request_object_encryption_alg"`
	RequestObjectEncryptionEnc   string   `json:"request_object_encryption_enc"`
	RequestURIs                  []string `json:"request_uris"`

	PostLogoutRedirectURIs            []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI              string   `json:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired  bool     `json:"backchannel_logout_session_required"`
	FrontchannelLogoutURI             string   `json:"frontchannel_logout_uri"`
	FrontchannelLogoutSessionRequired bool     `json:"frontchannel_logout_session_required"`

	// Accepted and kept in storage.Client.Metadata; the provider does not
	// act on them.
	DefaultMaxAge    *int64   `json:"default_max_age"`
	RequireAuthTime  *bool    `json:"require_auth_time"`
	DefaultACRValues []string `json:"default_acr_values"`
	InitiateLoginURI string   `json:"initiate_login_uri"`
	SoftwareID       string   `json:"software_id"`
	SoftwareVersion  string   `json:"software_version"`
}

// regError is an RFC 7591 §3.2.2 error response.
type regError struct {
	status int
	code   string
	desc   string
}

func (e *regError) Error() string { return e.code + ": " + e.desc }

func badMetadata(format string, args ...any) *regError {
	return &regError{http.StatusBadRequest, "invalid_client_metadata", fmt.Sprintf(format, args...)}
}

func unreachableURL(name, v string) *regError {
	return badMetadata("%s %q cannot be used: registered clients may not name private, loopback or link-local addresses", name, v)
}

func badRedirectURI(format string, args ...any) *regError {
	return &regError{http.StatusBadRequest, "invalid_redirect_uri", fmt.Sprintf(format, args...)}
}

var errRegistrationToken = &regError{http.StatusUnauthorized, "invalid_token", "The access token is missing, invalid or not valid for this client."}

func (p *Provider) writeRegError(w http.ResponseWriter, r *http.Request, e *regError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	p.log.InfoContext(r.Context(), "registration refused", slog.String("request_id", requestID(r.Context())),
		slog.String("error", e.code), slog.String("description", e.desc))
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": errorDescription(e.desc)})
}

// errorDescription keeps to the characters RFC 6749 §5.2 allows in
// error_description: validation messages quote values with %q, and values
// come from the client, so it is also bounded (capDescription).
func errorDescription(s string) string { return capDescription(printableASCII(s)) }

// handleRegister is the RFC 7591 client registration endpoint.
func (p *Provider) handleRegister(w http.ResponseWriter, r *http.Request) {
	cfg := p.cfg.Registration
	if !cfg.Enabled {
		p.handleNotFound(w, r)
		return
	}
	ok, wait, err := p.registrations.allow(r.Context(), sourceKey(p.clientIP(r)), p.now())
	if err != nil {
		// Fails closed (budgets.go): the database is likely down anyway.
		p.log.WarnContext(r.Context(), "registration limiter unavailable", "request_id", requestID(r.Context()), "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(int(retryUnavailable.Seconds())))
		p.writeRegError(w, r, &regError{http.StatusServiceUnavailable, "temporarily_unavailable", "Registration is not possible right now; try again later."})
		return
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+1)))
		p.writeRegError(w, r, &regError{http.StatusTooManyRequests, "temporarily_unavailable", "Too many registrations from this address; try again later."})
		return
	}
	privileged := false
	if cfg.InitialAccessToken != "" {
		if !sameSecret(authorizationBearer(r), cfg.InitialAccessToken) {
			p.writeRegError(w, r, errRegistrationToken)
			return
		}
		privileged = true
	}
	md, regErr := p.decodeRegistration(w, r)
	if regErr != nil {
		p.writeRegError(w, r, regErr)
		return
	}
	spec, meta, regErr := p.registrationSpec(md, rand.Text(), func(g string) bool { return privileged })
	if regErr != nil {
		p.writeRegError(w, r, regErr)
		return
	}
	if !privileged {
		if regErr := p.checkOpenRegistration(r.Context(), spec); regErr != nil {
			p.writeRegError(w, r, regErr)
			return
		}
	}
	clientSecret := clientspec.NewSecret(spec.TokenEndpointAuthMethod, spec.Public)
	spec.Secret = clientSecret
	c, regErr := p.registeredRecord(spec, storage.Client{})
	if regErr != nil {
		p.writeRegError(w, r, regErr)
		return
	}
	token := secret.NewToken()
	now := p.now().UTC()
	c.Source, c.CreatedAt, c.UpdatedAt = "registration", now, now
	c.RegisteredWithToken = privileged
	c.RegistrationAccessTokenHash = hashedKey(token)
	c.Metadata = meta
	if err := p.store.CreateClient(r.Context(), c); err != nil {
		p.registrationFailed(w, r, err)
		return
	}
	p.emit(r, audit.Registered(c.ID))
	p.log.InfoContext(r.Context(), "client registered", slog.String("request_id", requestID(r.Context())),
		slog.String("client_id", c.ID), slog.Bool("initial_access_token", privileged))
	writeJSON(w, http.StatusCreated, p.clientInformation(c, clientSecret, token))
}

// handleClientConfiguration is the RFC 7592 client configuration endpoint:
// read, replace or delete a registration with its registration access
// token.
func (p *Provider) handleClientConfiguration(w http.ResponseWriter, r *http.Request) {
	if !p.cfg.Registration.Enabled {
		p.handleNotFound(w, r)
		return
	}
	ctx := r.Context()
	id := mux.Vars(r)["client_id"]
	token := authorizationBearer(r)
	c, err := p.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		// RFC 7592 §2.1: an unknown client is 401, like a bad token.
		p.writeRegError(w, r, errRegistrationToken)
		return
	}
	if err != nil {
		p.registrationFailed(w, r, err)
		return
	}
	// Clients from the config or the CLI have no registration access token
	// and cannot be managed here.
	if token == "" || c.RegistrationAccessTokenHash == "" ||
		subtle.ConstantTimeCompare([]byte(hashedKey(token)), []byte(c.RegistrationAccessTokenHash)) != 1 {
		p.writeRegError(w, r, errRegistrationToken)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, p.clientInformation(c, "", token))
	case http.MethodPut:
		p.updateRegistration(w, r, c, token)
	case http.MethodDelete:
		// The client's tokens die with it: every token lookup loads the
		// client, and fails once it is gone.
		if err := p.store.DeleteClient(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
			p.registrationFailed(w, r, err)
			return
		}
		p.emit(r, audit.RegistrationDeleted(id))
		p.log.InfoContext(ctx, "client unregistered", slog.String("request_id", requestID(ctx)), slog.String("client_id", id))
		w.WriteHeader(http.StatusNoContent)
	}
}

// updateRegistration replaces a client's metadata (RFC 7592 §2.2): fields
// left out are cleared or take their defaults. The secret stays unless the
// new method stores it differently, in which case a new one is issued.
func (p *Provider) updateRegistration(w http.ResponseWriter, r *http.Request, old storage.Client, token string) {
	ctx := r.Context()
	md, regErr := p.decodeRegistration(w, r)
	if regErr != nil {
		p.writeRegError(w, r, regErr)
		return
	}
	if md.ClientID != "" && md.ClientID != old.ID {
		p.writeRegError(w, r, badMetadata("client_id does not match the client being updated"))
		return
	}
	if md.ClientSecret != "" && !p.secretMatches(old, md.ClientSecret) {
		p.writeRegError(w, r, badMetadata("client_secret does not match the current secret; a client cannot choose its secret"))
		return
	}
	// An update cannot add a grant that registration would not give now,
	// nor one the client did not have already.
	spec, meta, regErr := p.registrationSpec(md, old.ID, func(g string) bool { return slices.Contains(old.GrantTypes, g) })
	if regErr != nil {
		p.writeRegError(w, r, regErr)
		return
	}
	if old.OpenlyRegistered() {
		if regErr := p.checkOpenRegistration(ctx, spec); regErr != nil {
			p.writeRegError(w, r, regErr)
			return
		}
	}
	clientSecret := ""
	switch {
	case spec.TokenEndpointAuthMethod == "client_secret_jwt" && old.TokenEndpointAuthMethod == "client_secret_jwt" && len(old.SecretSealed) > 0:
		prev, err := p.sealer.Open(old.ID, old.SecretSealed)
		if err != nil {
			p.registrationFailed(w, r, err)
			return
		}
		spec.Secret = prev
	case isSecretMethod(spec.TokenEndpointAuthMethod) && isSecretMethod(old.TokenEndpointAuthMethod) && old.SecretHash != "":
		spec.SecretHash = old.SecretHash
	default:
		clientSecret = clientspec.NewSecret(spec.TokenEndpointAuthMethod, spec.Public)
		spec.Secret = clientSecret
	}
	c, regErr := p.registeredRecord(spec, old)
	if regErr != nil {
		p.writeRegError(w, r, regErr)
		return
	}
	c.Metadata = meta
	err := p.store.UpdateClient(ctx, old.ID, func(cur storage.Client) (storage.Client, error) {
		if cur.RegistrationAccessTokenHash != old.RegistrationAccessTokenHash {
			return cur, storage.ErrNotFound
		}
		c.Source, c.CreatedAt, c.UpdatedAt = cur.Source, cur.CreatedAt, p.now().UTC()
		c.RegistrationAccessTokenHash = cur.RegistrationAccessTokenHash
		c.RegisteredWithToken = cur.RegisteredWithToken
		return c, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		p.writeRegError(w, r, errRegistrationToken)
		return
	}
	if err != nil {
		p.registrationFailed(w, r, err)
		return
	}
	p.emit(r, audit.RegistrationUpdated(c.ID))
	p.log.InfoContext(ctx, "client registration updated", slog.String("request_id", requestID(ctx)), slog.String("client_id", c.ID))
	writeJSON(w, http.StatusOK, p.clientInformation(c, clientSecret, token))
}

func (p *Provider) secretMatches(c storage.Client, given string) bool {
	if len(c.SecretSealed) > 0 {
		prev, err := p.sealer.Open(c.ID, c.SecretSealed)
		return err == nil && subtle.ConstantTimeCompare([]byte(prev), []byte(given)) == 1
	}
	return c.SecretHash != "" && secret.Check(c.SecretHash, given) == nil
}

func (p *Provider) registrationFailed(w http.ResponseWriter, r *http.Request, err error) {
	p.log.ErrorContext(r.Context(), "registration", slog.String("request_id", requestID(r.Context())), slog.String("err", err.Error()))
	writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": "The registration could not be stored."})
}

// registeredRecord validates spec like every client and turns it into a
// record; what Validate refuses is invalid client metadata.
func (p *Provider) registeredRecord(spec clientspec.Spec, old storage.Client) (storage.Client, *regError) {
	spec, err := spec.Validate()
	var inv *clientspec.InvalidError
	if errors.As(err, &inv) {
		if inv.Public != "" {
			// The library's words stay in the log.
			p.log.Info("registration metadata refused", slog.String("detail", inv.Msg))
		}
		return storage.Client{}, badMetadata("%s", inv.PublicMsg())
	}
	if err == nil {
		var c storage.Client
		if c, err = spec.Record(old, p.sealer); err == nil {
			return c, nil
		}
	}
	p.log.Error("registration", slog.String("err", err.Error()))
	return storage.Client{}, &regError{http.StatusInternalServerError, "server_error", "The client could not be registered."}
}

// decodeRegistration reads the JSON body of a registration or update.
func (p *Provider) decodeRegistration(w http.ResponseWriter, r *http.Request) (registrationMetadata, *regError) {
	limit := p.cfg.Limits.JSONBodyBytes
	var md registrationMetadata
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return md, badMetadata("the request must be a JSON object with Content-Type application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return md, &regError{http.StatusRequestEntityTooLarge, "invalid_client_metadata", fmt.Sprintf("the request is larger than %d bytes", limit)}
	}
	if err != nil {
		return md, badMetadata("the request body could not be read")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return md, badMetadata("the request body is not a JSON object")
	}
	if err := json.Unmarshal(body, &md); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return md, badMetadata("%s must be %s", te.Field, jsonKind(te.Field, te.Type.String()))
		}
		return md, badMetadata("the request body is not valid client metadata")
	}
	return md, nil
}

// jsonKind says what a metadata field should have been.
func jsonKind(field, goType string) string {
	switch field {
	case "redirect_uris", "response_types", "grant_types", "contacts", "request_uris", "post_logout_redirect_uris", "default_acr_values":
		return "an array of strings"
	}
	switch goType {
	case "string":
		return "a string"
	case "[]string":
		return "an array of strings"
	case "bool":
		return "a boolean"
	case "int64":
		return "a whole number"
	}
	return "of another type"
}

// registrationSpec turns registered metadata into a client spec (not yet
// validated by clientspec.Spec.Validate) and the metadata that has no field of
// its own. mayUse says whether a privileged grant may be given.
func (p *Provider) registrationSpec(md registrationMetadata, id string, mayUse func(grant string) bool) (clientspec.Spec, map[string]any, *regError) {
	if md.SubjectType != "" && md.SubjectType != "public" {
		return clientspec.Spec{}, nil, badMetadata("subject_type %q is not supported (subject_types_supported: public)", md.SubjectType)
	}
	if md.SectorIdentifierURI != "" {
		// It only serves pairwise subjects, which are not offered; a client
		// sending it expects them, so say so rather than ignore it.
		return clientspec.Spec{}, nil, badMetadata("sector_identifier_uri is not supported: this provider issues public subject identifiers only")
	}
	for name, v := range map[string]string{
		"id_token_encrypted_response_alg": md.IDTokenEncryptedResponseAlg, "id_token_encrypted_response_enc": md.IDTokenEncryptedResponseEnc,
		"userinfo_encrypted_response_alg": md.UserinfoEncryptedResponseAlg, "userinfo_encrypted_response_enc": md.UserinfoEncryptedResponseEnc,
		"request_object_encryption_alg": md.RequestObjectEncryptionAlg, "request_object_encryption_enc": md.RequestObjectEncryptionEnc,
	} {
		// Ignoring these would leave a client expecting encrypted tokens
		// with plain ones.
		if v != "" {
			return clientspec.Spec{}, nil, badMetadata("%s is not supported: this provider does not encrypt tokens or accept encrypted request objects", name)
		}
	}
	if err := checkSizes(md); err != nil {
		return clientspec.Spec{}, nil, err
	}

	appType := md.ApplicationType
	if appType == "" {
		appType = "web"
	}
	if appType != "web" && appType != "native" {
		return clientspec.Spec{}, nil, badMetadata("application_type %q must be web or native", appType)
	}

	// RFC 7591 §2.1 defaults, each derived from the other when only one is
	// given, then the OIDC Registration §2 consistency rule: every
	// response type needs its grant.
	grants, responses := dedupe(md.GrantTypes), dedupe(md.ResponseTypes)
	if len(responses) == 0 && (len(grants) == 0 || slices.Contains(grants, "authorization_code")) {
		responses = []string{"code"}
	}
	if len(grants) == 0 {
		for _, rt := range responses {
			for _, g := range grantsFor(rt) {
				if !slices.Contains(grants, g) {
					grants = append(grants, g)
				}
			}
		}
	}
	for _, rt := range responses {
		for _, g := range grantsFor(rt) {
			if !slices.Contains(grants, g) {
				return clientspec.Spec{}, nil, badMetadata("response type %q needs the %s grant in grant_types", rt, g)
			}
		}
	}
	for _, g := range grants {
		if slices.Contains(privilegedGrants, g) && !mayUse(g) {
			return clientspec.Spec{}, nil, badMetadata("the %s grant is not available through open registration; ask the operator for the client", g)
		}
	}

	redirectNeeded := slices.Contains(grants, "authorization_code") || slices.Contains(grants, "implicit")
	if redirectNeeded && len(md.RedirectURIs) == 0 {
		return clientspec.Spec{}, nil, badRedirectURI("redirect_uris is required for the %s grant", strings.Join(slices.DeleteFunc(slices.Clone(grants), func(g string) bool {
			return g != "authorization_code" && g != "implicit"
		}), " and "))
	}
	for _, u := range md.RedirectURIs {
		if err := checkRegisteredRedirect(u, appType, slices.Contains(grants, "implicit")); err != nil {
			return clientspec.Spec{}, nil, badRedirectURI("redirect URI %q: %v", u, err)
		}
	}

	supported := p.discovery().ScopesSupported
	scopes := dedupe(strings.Fields(md.Scope))
	for _, s := range scopes {
		if !slices.Contains(supported, s) {
			return clientspec.Spec{}, nil, badMetadata("scope %q cannot be registered (registered clients may have: %s)", s, strings.Join(supported, " "))
		}
	}
	if len(scopes) == 0 {
		// Every published scope: the list is only what the client may ask
		// for, and the person still consents to each request.
		scopes = slices.Clone(supported)
	}

	method := md.TokenEndpointAuthMethod
	if method == "" {
		method = "client_secret_basic"
	}
	var jwks clientspec.JWKSDoc
	if len(md.JWKS) > 0 && string(md.JWKS) != "null" {
		if !strings.HasPrefix(strings.TrimSpace(string(md.JWKS)), "{") {
			return clientspec.Spec{}, nil, badMetadata("jwks must be a JSON Web Key Set object")
		}
		jwks = clientspec.JWKSDoc(md.JWKS)
	}
	if md.InitiateLoginURI != "" {
		if u, err := url.Parse(md.InitiateLoginURI); err != nil || u.Scheme != "https" || u.Host == "" {
			return clientspec.Spec{}, nil, badMetadata("initiate_login_uri must be an https URL")
		}
	}

	spec := clientspec.Spec{
		ID: id,
		ClientSettings: storage.ClientSettings{
			Name:                              md.ClientName,
			RedirectURIs:                      md.RedirectURIs,
			GrantTypes:                        grants,
			ResponseTypes:                     responses,
			Scopes:                            scopes,
			TokenEndpointAuthMethod:           method,
			TokenEndpointAuthSigningAlg:       md.TokenEndpointAuthAlg,
			Public:                            method == "none",
			JWKSURI:                           md.JWKSURI,
			LogoURI:                           md.LogoURI,
			ClientURI:                         md.ClientURI,
			PolicyURI:                         md.PolicyURI,
			TosURI:                            md.TosURI,
			Contacts:                          md.Contacts,
			IDTokenSignedResponseAlg:          md.IDTokenSignedResponseAlg,
			UserinfoSignedResponseAlg:         md.UserinfoSignedResponseAlg,
			RequestObjectSigningAlg:           md.RequestObjectSigningAlg,
			RequestURIs:                       md.RequestURIs,
			PostLogoutRedirectURIs:            md.PostLogoutRedirectURIs,
			BackchannelLogoutURI:              md.BackchannelLogoutURI,
			BackchannelLogoutSessionRequired:  md.BackchannelLogoutSessionRequired,
			FrontchannelLogoutURI:             md.FrontchannelLogoutURI,
			FrontchannelLogoutSessionRequired: md.FrontchannelLogoutSessionRequired,
		},
		JWKS: jwks,
	}

	// The URLs the provider itself will call: refused now when they name
	// an address the outbound guard would refuse (outbound.go); names are
	// checked when called.
	for _, f := range []struct{ name, v string }{{"jwks_uri", md.JWKSURI}, {"backchannel_logout_uri", md.BackchannelLogoutURI}} {
		if f.v != "" && errors.Is(p.out.checkRegisteredURL(f.v, md.RedirectURIs), errForbiddenAddress) {
			return clientspec.Spec{}, nil, unreachableURL(f.name, f.v)
		}
	}
	for _, u := range md.RequestURIs {
		if errors.Is(p.out.checkRegisteredURL(u, md.RedirectURIs), errForbiddenAddress) {
			return clientspec.Spec{}, nil, unreachableURL("request_uris", u)
		}
	}

	meta := map[string]any{"application_type": appType}
	if md.DefaultMaxAge != nil {
		if *md.DefaultMaxAge < 0 {
			return clientspec.Spec{}, nil, badMetadata("default_max_age must not be negative")
		}
		meta["default_max_age"] = *md.DefaultMaxAge
	}
	if md.RequireAuthTime != nil {
		meta["require_auth_time"] = *md.RequireAuthTime
	}
	if len(md.DefaultACRValues) > 0 {
		meta["default_acr_values"] = md.DefaultACRValues
	}
	for k, v := range map[string]string{"initiate_login_uri": md.InitiateLoginURI, "software_id": md.SoftwareID, "software_version": md.SoftwareVersion} {
		if v != "" {
			meta[k] = v
		}
	}
	return spec, meta, nil
}

// checkOpenRegistration applies what a client anyone may register must
// also follow: its redirect and post-logout redirect URIs name only hosts
// the operator listed in registration.allowed_redirect_hosts (loopback
// ones too on a loopback issuer), so the provider cannot be made to send
// people to an address of the registrant's choosing; and its name is not
// the name of one of the organisation's own clients, which it could
// otherwise pass for on the consent page.
func (p *Provider) checkOpenRegistration(ctx context.Context, spec clientspec.Spec) *regError {
	for _, raw := range spec.RedirectURIs {
		if !p.openRedirectAllowed(raw) {
			return badRedirectURI("redirect URI %q: its host is not one this provider accepts from open registration (registration.allowed_redirect_hosts)", raw)
		}
	}
	for _, raw := range spec.PostLogoutRedirectURIs {
		if !p.openRedirectAllowed(raw) {
			return badMetadata("post_logout_redirect_uri %q: its host is not one this provider accepts from open registration (registration.allowed_redirect_hosts)", raw)
		}
	}
	name := strings.TrimSpace(spec.Name)
	if name == "" {
		return nil
	}
	clients, err := p.store.ListClients(ctx)
	if err != nil {
		p.log.ErrorContext(ctx, "registration", slog.String("request_id", requestID(ctx)), slog.String("err", err.Error()))
		return &regError{http.StatusInternalServerError, "server_error", "The client could not be registered."}
	}
	if protectedName(clients, name) {
		return badMetadata("client_name is the name of one of this organisation's own applications; choose another")
	}
	return nil
}

// openRedirectAllowed says whether an openly registered client may name
// raw as a redirect target.
func (p *Provider) openRedirectAllowed(raw string) bool {
	hosts := p.cfg.Registration.AllowedRedirectHosts
	if slices.Contains(hosts, "*") {
		return true
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false // a private-use scheme names no host to check
	}
	if p.out.loopbackIssuer && (u.Scheme == "http" || u.Scheme == "https") && clientspec.IsLoopbackHost(u.Hostname()) {
		return true
	}
	return matchHost(hosts, u.Hostname())
}

// grantsFor is the grants a response type needs (OIDC Registration §2).
func grantsFor(responseType string) []string {
	var gs []string
	for _, part := range strings.Fields(responseType) {
		g := "implicit"
		if part == "code" {
			g = "authorization_code"
		}
		if part != "none" && !slices.Contains(gs, g) {
			gs = append(gs, g)
		}
	}
	return gs
}

// checkRegisteredRedirect adds the application_type rules of OIDC
// Registration §2 to the rules every client's redirect URIs follow. Web
// clients use https; http on loopback is allowed too for code-flow
// clients, so a developer can register a local app (the Registration spec
// forbids localhost only for implicit web clients). Native clients may use
// private-use schemes, http loopback, claimed https URIs (RFC 8252 §7) and
// the out-of-band URN.
func checkRegisteredRedirect(raw, appType string, implicit bool) error {
	if err := clientspec.ValidRedirectURI(raw); err != nil {
		return err
	}
	if appType == "native" {
		return nil
	}
	u, _ := url.Parse(raw)
	switch {
	case raw == clientspec.OOBRedirectURI || (u.Scheme != "https" && u.Scheme != "http"):
		return errors.New("a web application must use https; register application_type native for private-use schemes or urn:ietf:wg:oauth:2.0:oob")
	case implicit && (u.Scheme != "https" || clientspec.IsLoopbackHost(u.Hostname())):
		return errors.New("a web application using the implicit grant must use https and not a loopback host")
	}
	return nil
}

func checkSizes(md registrationMetadata) *regError {
	lists := map[string][]string{
		"redirect_uris": md.RedirectURIs, "response_types": md.ResponseTypes, "grant_types": md.GrantTypes,
		"contacts": md.Contacts, "request_uris": md.RequestURIs, "post_logout_redirect_uris": md.PostLogoutRedirectURIs,
		"default_acr_values": md.DefaultACRValues,
	}
	for name, l := range lists {
		if len(l) > maxRegistrationList {
			if name == "redirect_uris" {
				return badRedirectURI("at most %d redirect_uris", maxRegistrationList)
			}
			return badMetadata("at most %d values in %s", maxRegistrationList, name)
		}
		for _, v := range l {
			if len(v) > maxMetadataString {
				return badMetadata("a value in %s is longer than %d characters", name, maxMetadataString)
			}
		}
	}
	for name, v := range map[string]string{
		"client_name": md.ClientName, "logo_uri": md.LogoURI, "client_uri": md.ClientURI, "policy_uri": md.PolicyURI,
		"tos_uri": md.TosURI, "jwks_uri": md.JWKSURI, "scope": md.Scope, "backchannel_logout_uri": md.BackchannelLogoutURI,
		"frontchannel_logout_uri": md.FrontchannelLogoutURI, "initiate_login_uri": md.InitiateLoginURI,
		"software_id": md.SoftwareID, "software_version": md.SoftwareVersion,
	} {
		if len(v) > maxMetadataString {
			return badMetadata("%s is longer than %d characters", name, maxMetadataString)
		}
	}
	if invisibleInName(md.ClientName) {
		return badMetadata("client_name must not contain control or invisible formatting characters")
	}
	return nil
}

func dedupe(l []string) []string {
	var out []string
	for _, v := range l {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// clientInformation is the RFC 7591 §3.2.1 / RFC 7592 §3 response: every
// registered value, the credentials, and where to manage the registration.
// secret is shown only when just issued: the store keeps a hash.
func (p *Provider) clientInformation(c storage.Client, clientSecret, token string) map[string]any {
	out := map[string]any{
		"client_id":                 c.ID,
		"client_id_issued_at":       c.CreatedAt.Unix(),
		"registration_access_token": token,
		"registration_client_uri":   p.url("/register/" + url.PathEscape(c.ID)),
		"grant_types":               nonNil(c.GrantTypes),
		"response_types":            nonNil(c.ResponseTypes),
		"redirect_uris":             nonNil(c.RedirectURIs),
		"token_endpoint_auth_method": func() string {
			if c.TokenEndpointAuthMethod == "" {
				return clientspec.DefaultAuthMethod(c.Public)
			}
			return c.TokenEndpointAuthMethod
		}(),
		"scope":        strings.Join(c.Scopes, " "),
		"subject_type": "public",
	}
	if clientSecret != "" {
		out["client_secret"] = clientSecret
	}
	if clientSecret != "" || c.SecretHash != "" || len(c.SecretSealed) > 0 {
		out["client_secret_expires_at"] = 0 // never
	}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	set("client_name", c.Name)
	set("logo_uri", c.LogoURI)
	set("client_uri", c.ClientURI)
	set("policy_uri", c.PolicyURI)
	set("tos_uri", c.TosURI)
	set("jwks_uri", c.JWKSURI)
	set("token_endpoint_auth_signing_alg", c.TokenEndpointAuthSigningAlg)
	set("id_token_signed_response_alg", c.IDTokenSignedResponseAlg)
	set("userinfo_signed_response_alg", c.UserinfoSignedResponseAlg)
	set("request_object_signing_alg", c.RequestObjectSigningAlg)
	if c.JWKS != "" {
		out["jwks"] = json.RawMessage(c.JWKS)
	}
	if len(c.Contacts) > 0 {
		out["contacts"] = c.Contacts
	}
	if len(c.RequestURIs) > 0 {
		out["request_uris"] = c.RequestURIs
	}
	if len(c.PostLogoutRedirectURIs) > 0 {
		out["post_logout_redirect_uris"] = c.PostLogoutRedirectURIs
	}
	if c.BackchannelLogoutURI != "" {
		out["backchannel_logout_uri"] = c.BackchannelLogoutURI
		out["backchannel_logout_session_required"] = c.BackchannelLogoutSessionRequired
	}
	if c.FrontchannelLogoutURI != "" {
		out["frontchannel_logout_uri"] = c.FrontchannelLogoutURI
		out["frontchannel_logout_session_required"] = c.FrontchannelLogoutSessionRequired
	}
	for k, v := range c.Metadata {
		if _, taken := out[k]; !taken {
			out[k] = v
		}
	}
	return out
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// authorizationBearer is the RFC 6750 §2.1 header token, "" if none.
func authorizationBearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// sameSecret compares in constant time; hashing first hides the length.
func sameSecret(got, want string) bool {
	if got == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// registrationLimiter is a token bucket per address for POST /register,
// in the budgets like the login throttle's (see throttle, budgets.go).
type registrationLimiter struct {
	budgets storage.Budgets
}

// registrationBudget is the registrations an address may make.
var registrationBudget = budget{burst: registrationBurst, interval: registrationInterval}

func newRegistrationLimiter() *registrationLimiter {
	return newSharedRegistrationLimiter(membudgets.New())
}

func newSharedRegistrationLimiter(b storage.Budgets) *registrationLimiter {
	return &registrationLimiter{budgets: b}
}

// allow spends one registration of key's budget (see sourceKey), or says
// how long to wait. An error means the budget could not be consulted.
func (l *registrationLimiter) allow(ctx context.Context, key string, now time.Time) (bool, time.Duration, error) {
	var wait time.Duration
	err := updateBudgets(ctx, l.budgets, now, []string{"register/" + key}, func(cur []storage.Bucket) ([]storage.Bucket, error) {
		if wait = registrationBudget.wait(cur[0], now); wait > 0 {
			return nil, nil
		}
		cur[0] = registrationBudget.take(cur[0], now)
		return cur, nil
	})
	if err != nil {
		return false, 0, err
	}
	return wait == 0, wait, nil
}
