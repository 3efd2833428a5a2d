package provider

// The limiters' shared state. The sign-in throttle (throttle.go), the
// registration limiter (registration.go) and the per-client rate limits
// (ratelimit.go) keep their buckets in a storage.Budgets: Deps.Budgets,
// the database's when replicas share one, or by default one in memory
// (storage/membudgets), where a restart forgives.
//
// When the budgets cannot be read or written (the database is down):
//   - sign-in fails closed: no password is checked; the login and
//     account pages answer 503 "try again in a moment", the password
//     grant 503 temporarily_unavailable with Retry-After. Nobody is
//     locked out once the database is back: nothing was spent.
//   - registration fails closed the same way (503
//     temporarily_unavailable): it is open to anyone, and it writes to
//     the same database anyway.
//   - per-client rate limits fail open: the request is served and a
//     warning logged. A rate limit protects capacity, not secrets, and
//     refusing every client for a limiter's outage would be worse.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/storage"
)

// budgetsAttempts is how many times an update that lost a race
// (storage.ErrConflict) is made before giving up.
const budgetsAttempts = 5

// updateBudgets is b.UpdateBuckets, made again while it conflicts.
func updateBudgets(ctx context.Context, b storage.Budgets, now time.Time, names []string, fn func([]storage.Bucket) ([]storage.Bucket, error)) error {
	var err error
	for range budgetsAttempts {
		if err = b.UpdateBuckets(ctx, now, names, fn); !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	return err
}

// throttleUnavailableError refuses a password check because the throttle's
// budgets could not be consulted. It matches storage.ErrUnavailable, so
// pages answer 503 with Retry-After (renderError).
type throttleUnavailableError struct{ err error }

func (e *throttleUnavailableError) Error() string {
	return "sign-in throttle unavailable: " + e.err.Error()
}

func (e *throttleUnavailableError) Unwrap() error { return e.err }

func (e *throttleUnavailableError) Is(target error) bool { return target == storage.ErrUnavailable }

// throttleUnavailable turns a password grant refused for want of the
// throttle's budgets into temporarily_unavailable (503, Retry-After);
// other errors are returned as they are.
func throttleUnavailable(w http.ResponseWriter, err error) error {
	var u *throttleUnavailableError
	if !errors.As(err, &u) {
		return err
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(retryUnavailable.Seconds())))
	return fosite.ErrTemporarilyUnavailable.WithHint("Passwords cannot be checked right now. Please try again in a moment.").WithWrap(u)
}

// ForgetKnownSources ends, in b, the exemption from the account's
// sign-in budget of every place username signed in from: what a password
// change does. For a password changed where no provider runs (the CLI
// against PostgreSQL); a provider's own changes call it already.
func ForgetKnownSources(ctx context.Context, b storage.Budgets, username string) error {
	return newSharedThrottle(b, time.Now).forgetKnownSources(ctx, username)
}
