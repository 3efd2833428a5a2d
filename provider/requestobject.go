package provider

// Request objects (OIDC Core §6, RFC 9101): the authorization request's
// parameters in a JWT, passed by value (`request`) or by reference
// (`request_uri`), unsigned (alg none) or signed with one of the client's
// registered keys.
//
// They are resolved here, into plain parameters, before fosite parses the
// request. fosite's own resolver renders every claim with %s, which breaks
// a numeric max_age or a claims object, refuses even an unsigned object
// from a client without keys, and reads a request_uri without a size
// limit. Once resolved, the request is an ordinary one; the sealed
// interaction carries the resolved parameters through login and consent,
// so a request_uri is fetched once.
//
// The parameters merge as OIDC Core §6.3.3 says: those in the object win,
// the others in the URL still count. A signed object protects what it
// contains.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

const (
	// maxRequestObjectBytes bounds a fetched request object; real ones
	// are a few KiB.
	maxRequestObjectBytes = 64 << 10
	// requestURITimeout bounds the whole fetch: a person is waiting.
	requestURITimeout = 5 * time.Second
	// requestObjectSkew tolerates clocks that disagree a little.
	requestObjectSkew = time.Minute
)

// requestObjectJWTClaims are claims about the object itself, not
// authorization request parameters.
var requestObjectJWTClaims = []string{"iss", "aud", "exp", "iat", "nbf", "jti", "sub"}

func invalidRequestObject(format string, args ...any) *fosite.RFC6749Error {
	return fosite.ErrInvalidRequestObject.WithHintf(format, args...)
}

// resolveRequestObject replaces a request or request_uri parameter in
// form with the parameters of the object. It removes both parameters in
// every case (a pushed request's request_uri excepted), so fosite never
// resolves one itself; on error the form keeps the outer parameters only,
// and the error can go to the outer redirect_uri if that one is
// registered.
func (p *Provider) resolveRequestObject(ctx context.Context, form url.Values) error {
	value, uri := form.Get("request"), form.Get("request_uri")
	if strings.HasPrefix(uri, parURIPrefix) {
		if _, ok := form["request"]; ok {
			form.Del("request")
			return fosite.ErrInvalidRequest.WithHint("A pushed request_uri cannot be combined with a request object.")
		}
		return nil
	}
	form.Del("request")
	form.Del("request_uri")
	switch {
	case value == "" && uri == "":
		return nil
	case value != "" && uri != "":
		return fosite.ErrInvalidRequest.WithHint("Send request or request_uri, not both.")
	}
	rec, err := p.store.GetClient(ctx, form.Get("client_id"))
	if errors.Is(err, storage.ErrNotFound) {
		return nil // fosite answers invalid_client
	} else if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if uri != "" {
		if value, err = p.fetchRequestObject(ctx, rec, uri); err != nil {
			return err
		}
	}
	claims, err := p.verifyRequestObject(ctx, rec, value)
	if err != nil {
		return err
	}
	return mergeRequestObject(form, claims)
}

// verifyRequestObject checks the object's signature (or that it is
// unsigned, where the client allows that) and its JWT claims, and returns
// its claims.
func (p *Provider) verifyRequestObject(ctx context.Context, rec storage.Client, raw string) (map[string]any, error) {
	raw = strings.TrimSpace(raw)
	parts := strings.Split(raw, ".")
	switch len(parts) {
	case 3:
	case 5:
		return nil, invalidRequestObject("Encrypted request objects are not supported; sign it or send it unsigned.")
	default:
		return nil, invalidRequestObject("The request object is not a JWT.")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(b, &header) != nil {
		return nil, invalidRequestObject("The request object header is not base64url-encoded JSON.")
	}
	pinned := rec.RequestObjectSigningAlg
	var payload []byte
	if header.Alg == "none" {
		if pinned != "" && pinned != "none" {
			return nil, invalidRequestObject("This client's request objects must be signed with %s.", pinned)
		}
		if parts[2] != "" {
			return nil, invalidRequestObject("An unsigned request object (alg none) must have an empty signature.")
		}
		var err error
		if payload, err = base64.RawURLEncoding.DecodeString(parts[1]); err != nil {
			return nil, invalidRequestObject("The request object payload is not base64url-encoded.")
		}
	} else {
		var err error
		if payload, err = p.verifyRequestObjectSignature(ctx, rec, raw, pinned); err != nil {
			return nil, err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber() // max_age and the like stay exact
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, invalidRequestObject("The request object payload is not a JSON object.")
	}
	if err := p.checkRequestObjectClaims(claims, rec.ID); err != nil {
		return nil, err
	}
	return claims, nil
}

// verifyRequestObjectSignature verifies raw with the client's registered
// keys (jwks, or jwks_uri through the shared cache) and returns the payload.
func (p *Provider) verifyRequestObjectSignature(ctx context.Context, rec storage.Client, raw, pinned string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, clientspec.RequestObjectAlgs)
	if err != nil {
		return nil, invalidRequestObject("The request object must be unsigned (alg none) or signed with one of %s.", strings.Join(clientspec.AlgNames(clientspec.RequestObjectAlgs), ", ")).WithWrap(err).WithDebug(err.Error())
	}
	h := jws.Signatures[0].Header
	alg := jose.SignatureAlgorithm(h.Algorithm)
	if pinned != "" && pinned != string(alg) {
		return nil, invalidRequestObject("This client's request objects must use %s, not %s.", pinned, alg)
	}
	var set jose.JSONWebKeySet
	switch {
	case rec.JWKS != "":
		set, err = clientspec.ParseJWKS([]byte(rec.JWKS))
	case rec.JWKSURI != "":
		set, err = p.remoteKeys.Keys(ctx, rec.JWKSURI, h.KeyID, p.out.policyForURL(rec, rec.JWKSURI))
	default:
		return nil, invalidRequestObject("This client has no registered public keys (jwks or jwks_uri) to verify a signed request object.")
	}
	if err != nil {
		return nil, invalidRequestObject("The client's public keys could not be loaded.").WithWrap(err).WithDebug(err.Error())
	}
	keys := set.Keys
	if h.KeyID != "" {
		keys = set.Key(h.KeyID)
	}
	tried := 0
	for _, k := range keys {
		if !clientspec.KeyFits(k, alg) {
			continue
		}
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, nil
		}
		if tried++; tried == maxAssertionKeys {
			break
		}
	}
	if tried == 0 {
		return nil, invalidRequestObject("No key in the client's key set fits the request object's kid and alg %s.", alg)
	}
	return nil, invalidRequestObject("The request object signature does not verify with the client's keys.")
}

// checkRequestObjectClaims applies OIDC Core §6.3.2 and RFC 9101 §6.3 to
// the object's own claims: each one present must be right.
func (p *Provider) checkRequestObjectClaims(claims map[string]any, clientID string) error {
	for _, k := range []string{"client_id", "iss"} {
		if v, ok := claims[k]; ok && v != clientID {
			return invalidRequestObject("The request object's %s must be the client ID.", k)
		}
	}
	if aud, ok := claims["aud"]; ok {
		var auds []any
		switch a := aud.(type) {
		case string:
			auds = []any{a}
		case []any:
			auds = a
		}
		if !slices.Contains(auds, any(p.cfg.Issuer)) && !slices.Contains(auds, any(p.url("/authorize"))) {
			return invalidRequestObject("The request object's aud must be the issuer, %s.", p.cfg.Issuer)
		}
	}
	now := p.now()
	for _, k := range []string{"exp", "nbf", "iat"} {
		v, ok := claims[k]
		if !ok {
			continue
		}
		n, isNum := v.(json.Number)
		secs, err := n.Float64()
		if !isNum || err != nil {
			return invalidRequestObject("The request object's %s must be a number of seconds.", k)
		}
		t := time.Unix(int64(secs), 0)
		switch {
		case k == "exp" && now.After(t.Add(requestObjectSkew)):
			return invalidRequestObject("The request object has expired.")
		case k != "exp" && t.After(now.Add(requestObjectSkew)):
			return invalidRequestObject("The request object's %s is in the future.", k)
		}
	}
	for _, k := range []string{"request", "request_uri"} {
		if _, ok := claims[k]; ok {
			return invalidRequestObject("A request object must not contain %s.", k)
		}
	}
	return nil
}

// mergeRequestObject puts the object's parameters into form, over the
// ones sent in the URL.
func mergeRequestObject(form url.Values, claims map[string]any) error {
	if rt, ok := claims["response_type"].(string); ok && form.Get("response_type") != "" {
		a, b := strings.Fields(rt), strings.Fields(form.Get("response_type"))
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			// OIDC Core §6.1: the two must match.
			return invalidRequestObject("The response_type parameter and the request object's response_type differ.")
		}
	}
	for k, v := range claims {
		if slices.Contains(requestObjectJWTClaims, k) {
			continue
		}
		vals, err := parameterValues(v)
		if err != nil {
			return invalidRequestObject("A claim of the request object cannot be an authorization parameter.")
		}
		if vals != nil {
			form[k] = vals
		}
	}
	return nil
}

// parameterValues renders a JSON claim as the form values the same
// parameter would have in a URL: a number in decimal, an array of strings
// as repeated values (RFC 8707 resource), an object as JSON (claims).
func parameterValues(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case json.Number:
		return []string{v.String()}, nil
	case bool:
		return []string{strconv.FormatBool(v)}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				b, err := json.Marshal(v)
				return []string{string(b)}, err
			}
			out = append(out, s)
		}
		return out, nil
	case map[string]any:
		b, err := json.Marshal(v)
		return []string{string(b)}, err
	}
	return nil, fmt.Errorf("unexpected JSON value %T", v)
}

// fetchRequestObject gets the object a client published at uri. Fetching
// a URL named in a request is server-side request forgery waiting to
// happen, so: only a URI the client registered (fragments aside, as OIDC
// Registration §2 uses them for versioning), https (http only to a
// loopback host the registration names literally), a size cap, and the
// outbound guard (outbound.go: no redirects, a short timeout, only
// addresses the client may reach). The client learns only that the URI
// could not be used; why goes to the log.
func (p *Provider) fetchRequestObject(ctx context.Context, rec storage.Client, uri string) (string, error) {
	base, _, _ := strings.Cut(uri, "#")
	if !slices.ContainsFunc(rec.RequestURIs, func(r string) bool {
		b, _, _ := strings.Cut(r, "#")
		return b == base
	}) {
		return "", fosite.ErrInvalidRequestURI.WithHint("The request_uri is not registered for this client.")
	}
	u, err := url.Parse(uri)
	if err != nil || clientspec.ValidRequestURI(uri) != nil {
		return "", fosite.ErrInvalidRequestURI.WithHint("The request_uri is not a valid https URL.")
	}
	ctx, cancel := context.WithTimeout(ctx, requestURITimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
	if err != nil {
		return "", fosite.ErrInvalidRequestURI.WithHint("The request_uri is not a valid URL.").WithWrap(err).WithDebug(err.Error())
	}
	req.Header.Set("Accept", "application/oauth-authz-req+jwt, application/jwt, application/jose")
	unusable := func(err error) error {
		p.log.InfoContext(ctx, "request_uri fetch failed", slog.String("request_id", requestID(ctx)),
			slog.String("client_id", rec.ID), slog.String("request_uri", base), slog.String("err", err.Error()))
		return fosite.ErrInvalidRequestURI.WithHint("The request_uri could not be used.").WithWrap(err)
	}
	resp, err := p.out.clientFor(rec, u, requestURITimeout).Do(req)
	if err != nil {
		return "", unusable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", unusable(fmt.Errorf("answered HTTP %d, not 200", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRequestObjectBytes+1))
	if err != nil {
		return "", unusable(err)
	}
	if len(body) > maxRequestObjectBytes {
		return "", fosite.ErrInvalidRequestURI.WithHintf("The request object at the request_uri is larger than %d KiB.", maxRequestObjectBytes>>10)
	}
	return string(body), nil
}
