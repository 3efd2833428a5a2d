// Package transfer copies every record of one storage.Store into another,
// empty one: what `provider migrate-storage` does to move an installation
// between backends. It knows no backend: it reads through the List
// methods and storage.Walker and writes through the Store's own create
// methods, so any pair of backends works. It must not import a backend or
// the provider's protocol packages; the keys are not records and are
// copied by the caller.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/smallsso/provider/storage"
)

// batchSize is how many records one target transaction writes: a commit
// per record would make a large copy take hours on a file synced at every
// commit, and one transaction for everything would hold a large
// database's worth of writes in memory.
const batchSize = 500

// Counts are the records copied, by family.
type Counts struct {
	Clients, Users, TrustedIssuers int
	Tokens                         map[storage.TokenKind]int
	BrowserSessions, Consents      int
	JTIs                           int
	// Factors counts the users whose second factors were copied.
	Factors int
}

// TokensTotal is the number of token records of every kind.
func (c Counts) TokensTotal() int {
	n := 0
	for _, v := range c.Tokens {
		n += v
	}
	return n
}

// ErrNotEmpty means the target already holds records.
var ErrNotEmpty = errors.New("the target already holds data")

// Copy copies every record of from into to, which must be empty (Empty),
// and returns how many of each family it copied: clients, users, trusted
// issuers, token records of every kind (active or not, with the refresh
// grace's replay answers), browser sessions, consents, JTIs and second
// factors (as stored: sealed with the provider secret, which the caller
// copies with the keys). Nothing
// else may write to either store meanwhile. On an error the target holds
// part of the records: it is to be dropped, not resumed.
func Copy(ctx context.Context, from, to storage.Store) (Counts, error) {
	counts := Counts{Tokens: map[storage.TokenKind]int{}}
	if what, err := Empty(ctx, to); err != nil {
		return counts, err
	} else if what != "" {
		return counts, fmt.Errorf("%w (%s)", ErrNotEmpty, what)
	}
	w := &writer{to: to, ctx: ctx}
	defer w.abort()

	clients, err := from.ListClients(ctx)
	if err != nil {
		return counts, fmt.Errorf("read clients: %w", err)
	}
	for _, c := range clients {
		if err := w.write("client", func(ctx context.Context) error { return to.CreateClient(ctx, c) }); err != nil {
			return counts, err
		}
		counts.Clients++
	}
	users, err := from.ListUsers(ctx)
	if err != nil {
		return counts, fmt.Errorf("read users: %w", err)
	}
	for _, u := range users {
		if err := w.write("user", func(ctx context.Context) error { return to.CreateUser(ctx, u) }); err != nil {
			return counts, err
		}
		counts.Users++
	}
	// After the users: a user's factors need the user.
	err = from.WalkFactors(ctx, func(f storage.Factors) error {
		if err := w.write("second factors", func(ctx context.Context) error {
			return to.UpdateFactors(ctx, f.UserID, func(storage.Factors) (storage.Factors, error) { return f, nil })
		}); err != nil {
			return err
		}
		counts.Factors++
		return nil
	})
	if err != nil {
		return counts, err
	}
	issuers, err := from.ListTrustedIssuers(ctx)
	if err != nil {
		return counts, fmt.Errorf("read trusted issuers: %w", err)
	}
	for _, ti := range issuers {
		if err := w.write("trusted issuer", func(ctx context.Context) error { return to.CreateTrustedIssuer(ctx, ti) }); err != nil {
			return counts, err
		}
		counts.TrustedIssuers++
	}
	for _, kind := range storage.TokenKinds {
		err := from.WalkTokens(ctx, kind, func(r storage.TokenRequest) error {
			if err := w.write(string(kind)+" token", func(ctx context.Context) error { return copyToken(ctx, to, r) }); err != nil {
				return err
			}
			counts.Tokens[kind]++
			return nil
		})
		if err != nil {
			return counts, err
		}
	}
	err = from.WalkBrowserSessions(ctx, func(s storage.BrowserSession) error {
		if err := w.write("browser session", func(ctx context.Context) error { return to.CreateBrowserSession(ctx, s) }); err != nil {
			return err
		}
		counts.BrowserSessions++
		return nil
	})
	if err != nil {
		return counts, err
	}
	err = from.WalkConsents(ctx, func(c storage.Consent) error {
		if err := w.write("consent", func(ctx context.Context) error { return to.SaveConsent(ctx, c) }); err != nil {
			return err
		}
		counts.Consents++
		return nil
	})
	if err != nil {
		return counts, err
	}
	err = from.WalkJTIs(ctx, func(j storage.JTI) error {
		// An expired JTI is copied too (the janitor removes it); the
		// clock passed only decides whether an existing one may be
		// replaced, and the target is empty.
		if err := w.write("jti", func(ctx context.Context) error { return to.CreateJTI(ctx, j, time.Now()) }); err != nil {
			return err
		}
		counts.JTIs++
		return nil
	})
	if err != nil {
		return counts, err
	}
	return counts, w.commit()
}

// copyToken creates r in to. The refresh grace's replay answer of an
// inactive token goes through SetTokenReplay, which is what schedules its
// removal when ReplayUntil passes.
func copyToken(ctx context.Context, to storage.Store, r storage.TokenRequest) error {
	if r.Active || len(r.Replay) == 0 {
		return to.CreateToken(ctx, r)
	}
	replay, until := r.Replay, r.ReplayUntil
	r.Replay, r.ReplayUntil = nil, time.Time{}
	if err := to.CreateToken(ctx, r); err != nil {
		return err
	}
	return to.SetTokenReplay(ctx, r.Kind, r.Signature, replay, until)
}

// writer writes to the target in transactions of batchSize records.
type writer struct {
	to    storage.Store
	ctx   context.Context // the caller's
	txCtx context.Context // the open transaction's, nil between two
	n     int
}

func (w *writer) write(what string, fn func(ctx context.Context) error) error {
	if w.txCtx == nil {
		txCtx, err := w.to.BeginTx(w.ctx)
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		w.txCtx, w.n = txCtx, 0
	}
	if err := fn(w.txCtx); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if w.n++; w.n >= batchSize {
		return w.commit()
	}
	return nil
}

func (w *writer) commit() error {
	if w.txCtx == nil {
		return nil
	}
	txCtx := w.txCtx
	w.txCtx = nil
	if err := w.to.CommitTx(txCtx); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (w *writer) abort() {
	if w.txCtx != nil {
		_ = w.to.RollbackTx(w.txCtx)
		w.txCtx = nil
	}
}

// errFound stops a walk at its first record.
var errFound = errors.New("found")

// Empty reports what s holds, in words ("2 clients, tokens"), or "" when
// it holds no record of any family.
func Empty(ctx context.Context, s storage.Store) (string, error) {
	var held []string
	clients, err := s.ListClients(ctx)
	if err != nil {
		return "", err
	}
	if len(clients) > 0 {
		held = append(held, plural(len(clients), "client"))
	}
	users, err := s.ListUsers(ctx)
	if err != nil {
		return "", err
	}
	if len(users) > 0 {
		held = append(held, plural(len(users), "user"))
	}
	issuers, err := s.ListTrustedIssuers(ctx)
	if err != nil {
		return "", err
	}
	if len(issuers) > 0 {
		held = append(held, plural(len(issuers), "trusted issuer"))
	}
	check := func(name string, walk func() error) error {
		switch err := walk(); {
		case errors.Is(err, errFound):
			held = append(held, name)
		case err != nil:
			return err
		}
		return nil
	}
	for _, kind := range storage.TokenKinds {
		err := check("tokens", func() error {
			return s.WalkTokens(ctx, kind, func(storage.TokenRequest) error { return errFound })
		})
		if err != nil {
			return "", err
		}
		if len(held) > 0 && held[len(held)-1] == "tokens" {
			break
		}
	}
	if err := check("browser sessions", func() error {
		return s.WalkBrowserSessions(ctx, func(storage.BrowserSession) error { return errFound })
	}); err != nil {
		return "", err
	}
	if err := check("consents", func() error {
		return s.WalkConsents(ctx, func(storage.Consent) error { return errFound })
	}); err != nil {
		return "", err
	}
	if err := check("JTIs", func() error {
		return s.WalkJTIs(ctx, func(storage.JTI) error { return errFound })
	}); err != nil {
		return "", err
	}
	if err := check("second factors", func() error {
		return s.WalkFactors(ctx, func(storage.Factors) error { return errFound })
	}); err != nil {
		return "", err
	}
	return strings.Join(held, ", "), nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
