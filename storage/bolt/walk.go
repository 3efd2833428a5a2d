package bolt

import (
	"context"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
)

// The walks read in one bbolt read transaction, a consistent snapshot;
// writers are not held up by it.

func (s *Store) WalkTokens(ctx context.Context, kind storage.TokenKind, fn func(storage.TokenRequest) error) error {
	return wrap("walk tokens", s.view(ctx, func(t *txn) error {
		b, err := t.tokenBucket(kind)
		if err != nil {
			return err
		}
		return walk(ctx, b, fn)
	}))
}

func (s *Store) WalkBrowserSessions(ctx context.Context, fn func(storage.BrowserSession) error) error {
	return wrap("walk browser sessions", s.view(ctx, func(t *txn) error { return walk(ctx, t.sessions(), fn) }))
}

func (s *Store) WalkConsents(ctx context.Context, fn func(storage.Consent) error) error {
	return wrap("walk consents", s.view(ctx, func(t *txn) error { return walk(ctx, t.consents(), fn) }))
}

func (s *Store) WalkJTIs(ctx context.Context, fn func(storage.JTI) error) error {
	return wrap("walk jtis", s.view(ctx, func(t *txn) error { return walk(ctx, t.jtis(), fn) }))
}

// walk decodes every record of b, skipping nested buckets.
func walk[T any](ctx context.Context, b *bbolt.Bucket, fn func(T) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := decode[T](v)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}
