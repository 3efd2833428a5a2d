package audit

// Second factors at sign-in: the same signin event as a password, with
// the factor named in Method, so the trail of one sign-in reads
// "password right, then code wrong, then code right".

// Second-factor methods (Event.Method).
const (
	MethodTOTP         = "totp"
	MethodRecoveryCode = "recovery_code"
	MethodPasskey      = "passkey"
)

// Second-factor failure reasons (with ReasonThrottled and ReasonError).
const (
	ReasonBadCode = "bad_code"
	// ReasonCodeUsed is a right code presented again (a replay), or a
	// recovery code already spent.
	ReasonCodeUsed = "code_used"
	// ReasonCancelled is a person leaving the second-factor page.
	ReasonCancelled = "cancelled"
	// ReasonMFARequired is a correct password refused because the person
	// owes a second factor where none can be given (the password grant).
	ReasonMFARequired = "mfa_required"
)

// SecondFactorSucceeded is a second factor accepted for sub at sign-in.
func SecondFactorSucceeded(clientID, username, sub, method string) Event {
	return Event{Name: SignIn, Outcome: Success, ClientID: clientID, Username: username, Subject: sub, Method: method}
}

// SecondFactorFailed is a second factor refused (ReasonBadCode,
// ReasonCodeUsed, ReasonThrottled, ReasonCancelled, ReasonError) for sub,
// whose password was right.
func SecondFactorFailed(clientID, username, sub, method, reason string) Event {
	return Event{Name: SignIn, Outcome: Failure, ClientID: clientID, Username: username, Subject: sub, Method: method, Reason: reason}
}

// SignInRefusedMFA is a correct password refused because the person owes
// a second factor the flow cannot ask for (the password grant).
func SignInRefusedMFA(clientID, username, sub string) Event {
	return Event{Name: SignIn, Outcome: Failure, ClientID: clientID, Username: username, Subject: sub, Reason: ReasonMFARequired}
}
