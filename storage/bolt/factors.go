package bolt

import (
	"context"
	"errors"

	"github.com/smallsso/provider/storage"
)

func (s *Store) GetFactors(ctx context.Context, userID string) (storage.Factors, error) {
	var f storage.Factors
	err := s.view(ctx, func(t *txn) error {
		var err error
		f, err = get[storage.Factors](t.factors(), []byte(userID))
		return err
	})
	return f, wrap("get factors", err)
}

func (s *Store) UpdateFactors(ctx context.Context, userID string, fn func(storage.Factors) (storage.Factors, error)) error {
	var fnErr error
	err := s.update(ctx, func(t *txn) error {
		// Checked before anything is written (see batch.go).
		if t.users().Get([]byte(userID)) == nil {
			return storage.ErrNotFound
		}
		old, err := get[storage.Factors](t.factors(), []byte(userID))
		switch {
		case errors.Is(err, storage.ErrNotFound):
			old = storage.Factors{UserID: userID}
		case err != nil:
			return err
		}
		f, err := fn(old)
		if err != nil {
			fnErr = err
			return err
		}
		if f.UserID != userID {
			return errors.New("user id cannot change")
		}
		return put(t.factors(), []byte(userID), f)
	})
	if fnErr != nil {
		return fnErr
	}
	return wrap("update factors", err)
}

func (s *Store) DeleteFactors(ctx context.Context, userID string) error {
	return wrap("delete factors", s.update(ctx, func(t *txn) error {
		return t.factors().Delete([]byte(userID))
	}))
}

func (s *Store) WalkFactors(ctx context.Context, fn func(storage.Factors) error) error {
	return wrap("walk factors", s.view(ctx, func(t *txn) error { return walk(ctx, t.factors(), fn) }))
}
