package provider

// The `sid` claim and the list of clients a browser session signed in to,
// for RP-initiated, back-channel and front-channel logout.

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/smallsso/provider/provider/secret"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/smallsso/provider/storage"
)

// sidClaim is the session ID claim of ID tokens and logout tokens
// (Front-Channel Logout 1.0 §3, Back-Channel Logout 1.0 §2.4).
const sidClaim = "sid"

// joinBrowserSession puts the browser session's sid into the grant's ID
// token claims and records the client in the session, so that logout can
// tell it. txCtx is issueCode's transaction: the record joins the code's
// single commit rather than costing an fsync of its own, and it is only
// written the first time a client signs in through the session; later
// sign-ins of the same client read the session the request already has and
// write nothing. fosite keeps Extra claims on refresh, so refreshed ID
// tokens carry the same sid.
func (p *Provider) joinBrowserSession(txCtx context.Context, r *http.Request, clientID string, sess openid.Session) error {
	bs, ok, err := p.currentSession(txCtx, r)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if !ok {
		// proceed always has a session by now; refusing beats issuing a
		// grant that logout would not know about.
		return fosite.ErrServerError.WithDebug("no browser session at code issuance")
	}
	sid := bs.SID
	if sid == "" || !slices.Contains(bs.ClientIDs, clientID) {
		// Drawn outside the update function, which the store may run
		// again: the sid goes into the ID token.
		fresh := secret.NewToken()
		err = p.store.UpdateBrowserSession(txCtx, bs.ID, func(s storage.BrowserSession) (storage.BrowserSession, error) {
			if s.SID == "" {
				// A session started before sids existed gets one now.
				s.SID = fresh
			}
			if !slices.Contains(s.ClientIDs, clientID) {
				s.ClientIDs = append(s.ClientIDs, clientID)
			}
			sid = s.SID
			return s, nil
		})
		if errors.Is(err, storage.ErrNotFound) {
			// Signed out in another tab while this request was under way.
			return fosite.ErrLoginRequired.WithHint("The session ended while the request was processed.")
		}
		if err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
	}
	sess.IDTokenClaims().Extra[sidClaim] = sid
	return nil
}
