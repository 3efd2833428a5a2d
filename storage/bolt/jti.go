package bolt

import (
	"context"
	"errors"
	"time"

	"github.com/smallsso/provider/storage"
)

func (s *Store) CreateJTI(ctx context.Context, j storage.JTI, now time.Time) error {
	return wrap("create jti", s.update(ctx, func(t *txn) error {
		old, err := get[storage.JTI](t.jtis(), []byte(j.ID))
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return err
		case old.ExpiresAt.IsZero() || !old.ExpiresAt.Before(now):
			return storage.ErrAlreadyExists
		default:
			// Expired but not yet collected: the ID may be used again.
			if err := t.clearExpiry(old.ExpiresAt, familyJTI, old.ID); err != nil {
				return err
			}
		}
		if err := put(t.jtis(), []byte(j.ID), j); err != nil {
			return err
		}
		return t.setExpiry(j.ExpiresAt, familyJTI, j.ID)
	}))
}

func (s *Store) GetJTI(ctx context.Context, id string) (storage.JTI, error) {
	var j storage.JTI
	err := s.view(ctx, func(t *txn) error {
		var err error
		j, err = get[storage.JTI](t.jtis(), []byte(id))
		return err
	})
	return j, wrap("get jti", err)
}

func (t *txn) removeJTI(j storage.JTI) error {
	if err := t.jtis().Delete([]byte(j.ID)); err != nil {
		return err
	}
	return t.clearExpiry(j.ExpiresAt, familyJTI, j.ID)
}
