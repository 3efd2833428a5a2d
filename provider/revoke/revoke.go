// Package revoke owns taking back what a person was given: their browser
// sessions and the token families (refresh and access tokens) issued to
// them. The protocol core (a password change on the account page, logout)
// and the operator's tools (a password set from the CLI) both end access
// through it, so they end the same things in the same transaction.
//
// It works on storage alone and must not import provider or provider/admin.
package revoke

import (
	"context"
	"errors"
	"slices"

	"github.com/smallsso/provider/storage"
)

// Kinds are the records of a grant family that a revocation
// deletes: the tokens themselves. Codes are single-use and short-lived,
// and their replay is refused once the family is gone anyway.
var Kinds = []storage.TokenKind{storage.KindRefreshToken, storage.KindAccessToken}

// UserAccess ends every browser session of userID except keep ("" ends
// them all) and revokes every refresh token of the user together with the
// access tokens issued with it, in one transaction: a refresh racing with
// it either finished before (and its new tokens are revoked here) or finds
// its token gone. It returns the sessions it ended, for their clients to
// be told.
func UserAccess(ctx context.Context, store storage.Store, userID, keep string) (ended []storage.BrowserSession, err error) {
	txCtx, err := store.BeginTx(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.RollbackTx(txCtx)
			ended = nil
		}
	}()
	sessions, err := store.ListUserSessions(txCtx, userID)
	if err != nil {
		return nil, err
	}
	for _, s := range sessions {
		if s.ID == keep {
			continue
		}
		if err := store.DeleteBrowserSession(txCtx, s.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		ended = append(ended, s)
	}
	tokens, err := store.ListSubjectTokens(txCtx, storage.KindRefreshToken, userID)
	if err != nil {
		return nil, err
	}
	if err := Families(txCtx, store, tokens); err != nil {
		return nil, err
	}
	return ended, store.CommitTx(txCtx)
}

// Families deletes the tokens of every grant family in tokens.
func Families(ctx context.Context, store storage.Store, tokens []storage.TokenRequest) error {
	var families []string
	for _, t := range tokens {
		if !slices.Contains(families, t.RequestID) {
			families = append(families, t.RequestID)
		}
	}
	for _, reqID := range families {
		for _, kind := range Kinds {
			if err := store.RevokeByRequestID(ctx, kind, reqID); err != nil {
				return err
			}
		}
	}
	return nil
}
