package audit

import "strings"

// The constructors below are the only way handlers build events, so each
// emission stays one line and none can carry a credential. The caller
// fills nothing else: Time, ClientAddr and RequestID are stamped by the
// emitter (provider's emit, admin's Local).

// SignInSucceeded is a correct password on the login page, the account
// page or the password grant.
func SignInSucceeded(clientID, username, sub string) Event {
	return Event{Name: SignIn, Outcome: Success, ClientID: clientID, Username: username, Subject: sub}
}

// SignInFailed is a refused sign-in, with the username as typed and a
// reason (ReasonUnknownUser, ReasonBadPassword, ReasonThrottled,
// ReasonError).
func SignInFailed(clientID, username, reason string) Event {
	return Event{Name: SignIn, Outcome: Failure, ClientID: clientID, Username: username, Reason: reason}
}

// ConsentGiven is a person allowing a client the scopes.
func ConsentGiven(clientID, sub string, scopes []string) Event {
	return Event{Name: Consent, Outcome: Success, ClientID: clientID, Subject: sub, Scope: strings.Join(scopes, " ")}
}

// ConsentDenied is a person refusing a client.
func ConsentDenied(clientID, sub string) Event {
	return Event{Name: Consent, Outcome: Denied, ClientID: clientID, Subject: sub}
}

// TokensIssued is a grant answered with tokens (never the tokens).
func TokensIssued(clientID, sub, grantType string, scopes []string) Event {
	return Event{Name: TokenIssued, Outcome: Success, ClientID: clientID, Subject: sub, GrantType: grantType, Scope: strings.Join(scopes, " ")}
}

// TokensReplayed is a retired refresh token presented again within the
// refresh reuse grace and answered with the tokens its rotation gave.
func TokensReplayed(clientID, sub string, scopes []string) Event {
	e := TokensIssued(clientID, sub, "refresh_token", scopes)
	e.Reason = "replay"
	return e
}

// TokenRequestRefused is a failed token request; reason is the OAuth
// error code (invalid_client, invalid_grant...).
func TokenRequestRefused(clientID, grantType, reason string) Event {
	return Event{Name: TokenRefused, Outcome: Failure, ClientID: clientID, GrantType: grantType, Reason: reason}
}

// RevokedByClient is an RFC 7009 revocation request the client made.
func RevokedByClient(clientID string) Event {
	return Event{Name: TokenRevoked, Outcome: Success, ClientID: clientID, Reason: "client"}
}

// RevokedByUser is a person taking a client's access back (account page).
func RevokedByUser(clientID, sub string) Event {
	return Event{Name: TokenRevoked, Outcome: Success, ClientID: clientID, Subject: sub, Reason: "user"}
}

// RefreshTokenReused is a rotated refresh token presented again outside
// any grace period: the whole family was revoked.
func RefreshTokenReused(clientID string) Event {
	return Event{Name: RefreshReuse, Outcome: Denied, ClientID: clientID, GrantType: "refresh_token", Reason: "family_revoked"}
}

// CodeReplayed is an authorization code used a second time: the tokens
// it bought were revoked.
func CodeReplayed(clientID string) Event {
	return Event{Name: CodeReplay, Outcome: Denied, ClientID: clientID, GrantType: "authorization_code", Reason: "tokens_revoked"}
}

// RateLimitedClient is a client refused for going over its rate limit at
// endpoint (e.g. "token").
func RateLimitedClient(clientID, endpoint string) Event {
	return Event{Name: RateLimited, Outcome: Denied, ClientID: clientID, Reason: endpoint}
}

// Registered is a client created by dynamic registration.
func Registered(clientID string) Event {
	return Event{Name: ClientRegistered, Outcome: Success, ClientID: clientID}
}

// RegistrationUpdated is a registered client changing its metadata.
func RegistrationUpdated(clientID string) Event {
	return Event{Name: ClientUpdated, Outcome: Success, ClientID: clientID}
}

// RegistrationDeleted is a registered client deleting itself.
func RegistrationDeleted(clientID string) Event {
	return Event{Name: ClientDeleted, Outcome: Success, ClientID: clientID}
}

// LoggedOut is a browser session ended at /logout; clientID is the
// relying party that asked, if any.
func LoggedOut(clientID, sub string) Event {
	return Event{Name: Logout, Outcome: Success, ClientID: clientID, Subject: sub}
}

// PasswordChange is a person changing their password on the account
// page; a failure has a reason (bad_password, policy...).
func PasswordChange(sub, reason string) Event {
	if reason != "" {
		return Event{Name: PasswordChanged, Outcome: Failure, Subject: sub, Reason: reason}
	}
	return Event{Name: PasswordChanged, Outcome: Success, Subject: sub}
}

// Admin is an operator's change through the CLI or the admin socket; a
// refused one has a reason (not_found, exists, invalid, error).
func Admin(op, object, reason string) Event {
	if reason != "" {
		return Event{Name: AdminChange, Outcome: Failure, Op: op, Object: object, Reason: reason}
	}
	return Event{Name: AdminChange, Outcome: Success, Op: op, Object: object}
}

// Reloaded is the config re-read (SIGHUP or a change of the file); a
// refused one has a short reason (never the config's content: it holds
// secrets).
func Reloaded(reason string) Event {
	if reason != "" {
		return Event{Name: ConfigReloaded, Outcome: Failure, Reason: reason}
	}
	return Event{Name: ConfigReloaded, Outcome: Success}
}

// NextKeyPublished is a signing key published by the rotation schedule
// ahead of its use (reason: its algorithm), or a scheduled rotation that
// failed (no kid).
func NextKeyPublished(kid, alg string, err error) Event {
	if err != nil {
		return Event{Name: KeyPublished, Outcome: Failure, Reason: ReasonError}
	}
	return Event{Name: KeyPublished, Outcome: Success, Object: kid, Reason: alg}
}

// FactorEnrolled and FactorRemoved name the factor with the Method
// constants of secondfactor.go (MethodTOTP, MethodPasskey), in Object.

// FactorEnrolled is a person adding a second factor (method: MethodTOTP,
// MethodPasskey), proved by one use of it.
func FactorEnrolled(sub, method string) Event {
	return Event{Name: MFAEnrolled, Outcome: Success, Subject: sub, Object: method}
}

// FactorEnrolledRefused is an addition of a second factor refused before
// it was made (reason: bad_password, throttled).
func FactorEnrolledRefused(sub, method, reason string) Event {
	return Event{Name: MFAEnrolled, Outcome: Failure, Subject: sub, Object: method, Reason: reason}
}

// FactorRemoved is a person removing a second factor; a refused removal
// has a reason (bad_password, throttled).
func FactorRemoved(sub, method, reason string) Event {
	if reason != "" {
		return Event{Name: MFARemoved, Outcome: Failure, Subject: sub, Object: method, Reason: reason}
	}
	return Event{Name: MFARemoved, Outcome: Success, Subject: sub, Object: method}
}

// RecoveryCodesMade is a new generation of recovery codes (the old ones
// stop working); reason says why: "first_factor" or "regenerated".
func RecoveryCodesMade(sub, reason string) Event {
	return Event{Name: RecoveryCodesGenerated, Outcome: Success, Subject: sub, Reason: reason}
}
