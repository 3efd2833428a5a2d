package storage

import "context"

// UserTokens is what the account page needs of the tokens a person has
// granted: which clients hold them, and a way to take them all back from
// one client. A backend answers both from an index by subject, without
// reading other subjects' tokens: they run on password changes, logouts
// and the account page, whatever the number of tokens stored.
type UserTokens interface {
	// ListSubjectTokens returns every token of kind whose Subject is
	// subject, active or not, expired or not: what counts is the caller's
	// policy. Tokens without a subject (client_credentials) belong to no
	// one: an empty subject lists nothing.
	ListSubjectTokens(ctx context.Context, kind TokenKind, subject string) ([]TokenRequest, error)
	// RevokeSubjectClient deletes every token of every kind that subject
	// granted clientID (codes, access and refresh tokens and their
	// sessions). Deleting nothing is not an error; an empty subject
	// deletes nothing.
	RevokeSubjectClient(ctx context.Context, subject, clientID string) error
}
