package provider

// The authorization endpoint, OAuth 2.0 (RFC 6749 §4.1) and OpenID Connect
// Core §3.1.2: parse with fosite, make sure a person is signed in and has
// consented, then issue the code. Login and consent pages post back to
// /login and /consent, which resume here with the sealed interaction.

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/templates"
)

func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	var objectErr error
	if r.ParseForm() == nil {
		objectErr = p.resolveRequestObject(r.Context(), r.Form)
		foldResources(r.Form)
		markAbsentState(r.Form)
	}
	ar, err := p.oauth2.NewAuthorizeRequest(r.Context(), r)
	if ar != nil {
		err = targetError(ar.GetClient(), r.Form, err)
	}
	if objectErr != nil {
		// A bad request object goes back to the outer redirect_uri if that
		// one is registered, and to an error page otherwise.
		err = objectErr
	}
	name := p.overlongParam(r.Form, authorizeBoundedParams)
	if name == "" && ar != nil {
		// A pushed request's parameters (fosite resolved a request object
		// in it at the push) come from the store.
		name = p.overlongParam(ar.GetRequestForm(), authorizeBoundedParams)
	}
	if name != "" {
		// Checked after the request object is merged, so its values are
		// bounded too. An over-long value that the error redirect would
		// carry back (or that decides where it goes) means a page.
		err = fosite.ErrInvalidRequest.WithHint(p.overlongError(name))
		if slices.Contains(echoedAuthorizeParams, name) {
			ar = nil
		}
	}
	pushed := err == nil && strings.HasPrefix(r.Form.Get("request_uri"), parURIPrefix)
	if err == nil && !pushed && requiresPAR(ar.GetClient()) {
		err = fosite.ErrInvalidRequest.WithHint("This client must push its authorization requests first (RFC 9126).")
	}
	if err == nil {
		err = checkResponseType(ar)
	}
	if err == nil {
		err = checkPKCE(ar)
	}
	if err == nil {
		err = checkAuthzParams(ar)
	}
	if err != nil {
		if missingResponseType(ar, err) {
			ar = nil // a page, never a redirect
		}
		p.authorizeError(w, r, ar, err)
		return
	}
	params := ar.GetRequestForm()
	if pushed {
		// The request_uri is spent; the interaction carries the pushed
		// parameters themselves, already validated at the push.
		params = maps.Clone(params)
		params.Del("request_uri")
	}
	p.proceed(w, r, ar, interaction{Params: params, RequestedAt: p.now().Unix()}, false, nil)
}

// handlePAR is the pushed authorization request endpoint (RFC 9126): an
// authenticated client posts the parameters and gets a one-time
// request_uri to send the browser with.
func (p *Provider) handlePAR(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.ParseForm() == nil {
		markAbsentState(r.PostForm)
		markAbsentState(r.Form)
	}
	// fosite fetches the jwks_uri of a signed request object itself here;
	// the guard applies the named client's policy to it.
	ctx = p.withClaimedClient(ctx, r)
	if name := p.overlongParam(r.PostForm, authorizeBoundedParams); name != "" {
		err := fosite.ErrInvalidRequest.WithHint(p.overlongError(name))
		p.logProtocolError(r, "par", err)
		p.oauth2.WritePushedAuthorizeError(ctx, w, nil, err)
		return
	}
	ar, err := p.oauth2.NewPushedAuthorizeRequest(ctx, r)
	if err == nil {
		err = checkResponseType(ar)
	}
	if err == nil {
		err = checkPKCE(ar)
	}
	if err != nil {
		p.logProtocolError(r, "par", err)
		p.oauth2.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	resp, err := p.oauth2.NewPushedAuthorizeResponse(ctx, ar, newSession())
	if err != nil {
		p.logProtocolError(r, "par", err)
		p.oauth2.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	p.oauth2.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}

// openlyRegistered says whether a client was registered by anyone (no
// initial access token). Such a client is never exempt from consent: only
// the person's own remembered decision spares them the page.
func openlyRegistered(c fosite.Client) bool {
	cl, ok := c.(*client)
	return ok && cl.rec.OpenlyRegistered()
}

// skipsConsent says whether the operator declared the client first-party
// (skip_consent): its people are not asked to consent. A client that came
// through /register never skips consent, whatever its record says.
func skipsConsent(c fosite.Client) bool {
	cl, ok := c.(*client)
	return ok && cl.rec.SkipConsent && cl.rec.Source != "registration"
}

func requiresPAR(c fosite.Client) bool {
	cl, ok := c.(*client)
	return ok && cl.rec.RequirePAR
}

// proceed takes a validated request as far as it can go: to the login page,
// the consent page, or the redirect back to the client. consented says the
// person has just allowed the request on the consent page; remember is the
// consent they asked to be remembered (nil if none), stored with the code.
func (p *Provider) proceed(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction, consented bool, remember *storage.Consent) {
	ctx := r.Context()
	form := ar.GetRequestForm()
	prompts := fosite.Arguments(strings.Fields(form.Get("prompt")))
	requestedAt := time.Unix(it.RequestedAt, 0)

	userID, authTime, amr := it.UserID, time.Unix(it.AuthTime, 0), mfa.SessionAMR(it.AMR)
	if userID == "" {
		s, ok, err := p.currentSession(ctx, r)
		if err != nil {
			p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
			return
		}
		if ok {
			userID, authTime, amr = s.UserID, s.AuthTime, mfa.SessionAMR(s.AMR)
			r = withSession(r, s)
		}
	}
	var user storage.User
	if userID != "" {
		u, err := p.store.GetUser(ctx, userID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			userID = "" // deleted since they signed in
		case err != nil:
			p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
			return
		default:
			user = u
		}
	}

	freshLogin := it.UserID != "" && !authTime.Before(requestedAt)
	needLogin, err := p.needsLogin(ctx, ar, userID, authTime, requestedAt, freshLogin)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	if needLogin {
		if prompts.Has("none") {
			p.authorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The user must sign in (again) before this request can be answered."))
			return
		}
		p.showLogin(w, r, ar, it, p.loginHint(ctx, form), "", http.StatusOK)
		return
	}
	// A session that proved less than the request needs steps up.
	if p.stepUp(w, r, ar, it, user, amr, prompts) {
		return
	}

	if !consented {
		// prompt=consent asks even for a client that skips consent: OIDC
		// Core §3.1.2.1 says the provider must then prompt.
		ask := prompts.Has("consent")
		if !ask && !skipsConsent(ar.GetClient()) {
			remembered, err := p.consentCovers(r, userID, ar)
			if err != nil {
				p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
				return
			}
			ask = !remembered
		}
		if ask {
			if prompts.Has("none") {
				p.authorizeError(w, r, ar, fosite.ErrConsentRequired.WithHint("The user has not consented to this client."))
				return
			}
			it.UserID, it.AuthTime, it.AMR = userID, authTime.Unix(), amr
			p.showConsent(w, r, ar, it, user)
			return
		}
	}

	p.issueCode(w, r, ar, user, authTime, amr, requestedAt, remember)
}

// issueCode grants what was asked (fosite has already checked it against
// the client's registration) and sends the response back: the code, and
// for implicit and hybrid response types the tokens, in the requested
// response mode. remember, if not nil, is the consent to remember.
func (p *Provider) issueCode(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, user storage.User, authTime time.Time, amr []string, requestedAt time.Time, remember *storage.Consent) {
	ctx := r.Context()
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	for _, a := range ar.GetRequestedAudience() {
		ar.GrantAudience(a)
	}
	sess := userSession(p.cfg.Issuer, user.ID, user.Username, authTime, requestedAt)
	// Profile claims go into the ID token as well as userinfo: Grafana,
	// GitLab and oauth2-proxy read email and groups from the ID token.
	for k, v := range userClaims(user, ar.GetGrantedScopes()) {
		if k != "sub" {
			sess.Claims.Extra[k] = v
		}
	}
	applyClaimsRequest(sess, user, ar, amr)
	// The remembered consent, the browser session's client list and the
	// code, PKCE and OIDC session records are one commit (one fsync);
	// nothing slow happens inside. A consent is only remembered with the
	// code it was given for.
	txCtx, err := p.store.BeginTx(ctx)
	if err != nil {
		p.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	// Ends the transaction if a panic skips the commit (a no-op after it).
	defer p.store.RollbackTx(txCtx)
	if remember != nil {
		if err = p.rememberConsent(txCtx, *remember); err != nil {
			err = fosite.ErrServerError.WithWrap(err)
		}
	}
	if err == nil {
		err = p.joinBrowserSession(txCtx, r, ar.GetClient().GetID(), sess)
	}
	var resp fosite.AuthorizeResponder
	if err == nil {
		resp, err = p.oauth2.NewAuthorizeResponse(txCtx, ar, sess)
	}
	if err == nil {
		err = p.store.CommitTx(txCtx)
	} else {
		p.store.RollbackTx(txCtx)
	}
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	if isOOB(ar) {
		// Nowhere to redirect to: the person copies the code by hand.
		w.Header().Set("Cache-Control", "no-store")
		p.render(w, r, http.StatusOK, templates.PageOOB, templates.OOBPage{
			Brand: p.brand(), ClientName: clientName(ar), Code: resp.GetCode(),
		})
		return
	}
	resp.AddParameter("iss", p.cfg.Issuer) // RFC 9207
	if ar.GetState() == stateAbsent {
		resp.GetParameters().Del("state")
	}
	if e, ok := implicitIssued(ar, user.ID); ok {
		p.emit(r, e)
	}
	p.oauth2.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// isOOB reports whether the request asked for the code to be shown rather
// than redirected (the client registered urn:ietf:wg:oauth:2.0:oob, and
// fosite has matched it exactly).
func isOOB(ar fosite.AuthorizeRequester) bool {
	return ar.IsRedirectURIValid() && ar.GetRedirectURI().String() == clientspec.OOBRedirectURI
}

// showLogin shows the sign-in form; problem is a catalogue message (or
// one already translated, which passes through unchanged).
func (p *Provider) showLogin(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction, username, problem string, status int) {
	it.CSRF = p.csrfToken(w, r)
	it.UserID, it.AuthTime = "", 0
	r = withUILocales(r, it.Params.Get("ui_locales"))
	if problem != "" {
		problem = p.tr(r, problem)
	}
	p.render(w, r, status, templates.PageLogin, templates.LoginPage{
		Brand:       p.brand(),
		Action:      p.path("/login"),
		Interaction: p.seal(it),
		CSRF:        it.CSRF,
		ClientName:  clientName(ar),
		Client:      clientInfo(ar.GetClient()),
		Username:    username,
		Error:       problem,
	})
}

func (p *Provider) showConsent(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction, user storage.User) {
	it.CSRF = p.csrfToken(w, r)
	r = withUILocales(r, it.Params.Get("ui_locales"))
	p.render(w, r, http.StatusOK, templates.PageConsent, templates.ConsentPage{
		Brand:       p.brand(),
		Action:      p.path("/consent"),
		Interaction: p.seal(it),
		CSRF:        it.CSRF,
		ClientName:  clientName(ar),
		Client:      clientInfo(ar.GetClient()),
		Username:    user.Username,
		Scopes:      scopeLines(consentScopes(ar)),
		Unverified:  openlyRegistered(ar.GetClient()),
	})
}

// consentCovers reports whether the user remembered a consent for this
// client that includes every requested scope.
func (p *Provider) consentCovers(r *http.Request, userID string, ar fosite.AuthorizeRequester) (bool, error) {
	c, err := p.store.GetConsent(r.Context(), userID, ar.GetClient().GetID())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !c.ExpiresAt.IsZero() && p.now().After(c.ExpiresAt) {
		return false, nil
	}
	return fosite.Arguments(c.Scopes).Has(consentScopes(ar)...), nil
}

// rememberConsent stores c in the transaction of txCtx, unless the same
// consent is stored already (the same scopes, neither expiring): asked
// again with prompt=consent, the person changed nothing.
func (p *Provider) rememberConsent(txCtx context.Context, c storage.Consent) error {
	old, err := p.store.GetConsent(txCtx, c.UserID, c.ClientID)
	switch {
	case err == nil && old.ExpiresAt.IsZero() && c.ExpiresAt.IsZero() &&
		fosite.Arguments(old.Scopes).Has(c.Scopes...) && fosite.Arguments(c.Scopes).Has(old.Scopes...):
		return nil
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return err
	}
	return p.store.SaveConsent(txCtx, c)
}

// resume rebuilds and re-validates the authorization request an interaction
// carries, exactly as if the client had sent it again.
func (p *Provider) resume(r *http.Request, it interaction) (fosite.AuthorizeRequester, error) {
	r2 := r.Clone(r.Context())
	r2.Method = http.MethodGet
	r2.URL = &url.URL{Path: p.path("/authorize"), RawQuery: it.Params.Encode()}
	r2.Body = http.NoBody
	r2.Form, r2.PostForm, r2.MultipartForm = nil, nil, nil
	r2.Header = r.Header.Clone()
	r2.Header.Del("Content-Type")
	return p.oauth2.NewAuthorizeRequest(r.Context(), r2)
}

// authorizeError sends the error to the client when its redirect URI is
// known to be valid, and shows a page to the person otherwise: never
// redirect to an unverified URI (RFC 6749 §4.1.2.1).
func (p *Provider) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	p.logProtocolError(r, "authorize", err)
	if ar != nil && ar.IsRedirectURIValid() && !isOOB(ar) {
		if ar.GetResponseMode() == fosite.ResponseModeFormPost {
			p.writeFormPostError(w, r, ar, printableError(err))
			return
		}
		p.oauth2.WriteAuthorizeError(r.Context(), &issWriter{ResponseWriter: w, iss: p.cfg.Issuer}, ar, printableError(err))
		return
	}
	// The person gets plain words and the code; fosite's description and
	// hint, written for developers, are in the log above.
	rfc := fosite.ErrorToRFC6749Error(err)
	title, message, advice := authorizePage(rfc.ErrorField)
	p.renderError(w, r, pageError{Status: rfc.CodeField, Title: title, Message: message, Advice: advice, Code: rfc.ErrorField})
}

// checkPKCE refuses a bad PKCE request before anyone is asked to sign in;
// fosite checks the same when it issues the code, which is too late to
// spare the person a pointless login (RFC 7636 §4.4.1, RFC 9700 §2.1.1).
//
// PKCE protects a code: a response type without one (id_token, id_token
// token) has nothing for it to protect, even for a public client, whose
// tokens then come straight from the authorization endpoint.
func checkPKCE(ar fosite.AuthorizeRequester) error {
	if !ar.GetResponseTypes().Has("code") {
		return nil
	}
	form := ar.GetRequestForm()
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	switch {
	case challenge == "" && ar.GetClient().IsPublic():
		return fosite.ErrInvalidRequest.WithHint("Public clients must use PKCE: code_challenge is required.")
	case challenge == "" && method != "":
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method was sent without code_challenge.")
	case challenge != "" && method != "S256":
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256.")
	}
	return nil
}

func clientName(ar fosite.AuthorizeRequester) string {
	if c, ok := ar.GetClient().(*client); ok {
		return c.displayName()
	}
	return ar.GetClient().GetID()
}

// issWriter adds RFC 9207's `iss` to the error redirects fosite writes, so
// a client can tell which provider an error came from (mix-up defence).
type issWriter struct {
	http.ResponseWriter
	iss string
}

func (w *issWriter) WriteHeader(code int) {
	if loc := w.Header().Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			if u.Fragment != "" {
				v, _ := url.ParseQuery(u.Fragment)
				setIssDropAbsentState(v, w.iss)
				u.Fragment = v.Encode()
			} else {
				v := u.Query()
				setIssDropAbsentState(v, w.iss)
				u.RawQuery = v.Encode()
			}
			w.Header().Set("Location", u.String())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// stateAbsent stands in for a state the client did not send. RFC 6749
// §4.1.1 makes state optional, but fosite refuses a request without one;
// the stand-in gets the request through and is removed from every
// response, so the client gets back exactly what it sent: nothing.
const stateAbsent = "~state-not-sent~"

func markAbsentState(form url.Values) {
	if form.Get("state") == "" && form.Get("request_uri") == "" {
		form.Set("state", stateAbsent)
	}
}

func setIssDropAbsentState(v url.Values, iss string) {
	v.Set("iss", iss)
	if v.Get("state") == stateAbsent {
		v.Del("state")
	}
}
