package bolt

import (
	"bytes"
	"context"
	"errors"

	"github.com/smallsso/provider/storage"
)

func (s *Store) SaveConsent(ctx context.Context, c storage.Consent) error {
	return wrap("save consent", s.update(ctx, func(t *txn) error {
		k := key(c.UserID, c.ClientID)
		old, err := get[storage.Consent](t.consents(), k)
		switch {
		case err == nil:
			if err := t.clearExpiry(old.ExpiresAt, familyConsent, c.UserID, c.ClientID); err != nil {
				return err
			}
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
		if err := put(t.consents(), k, c); err != nil {
			return err
		}
		return t.setExpiry(c.ExpiresAt, familyConsent, c.UserID, c.ClientID)
	}))
}

func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error) {
	var c storage.Consent
	err := s.view(ctx, func(t *txn) error {
		var err error
		c, err = get[storage.Consent](t.consents(), key(userID, clientID))
		return err
	})
	return c, wrap("get consent", err)
}

func (s *Store) ListConsents(ctx context.Context, userID string) ([]storage.Consent, error) {
	var consents []storage.Consent
	err := s.view(ctx, func(t *txn) error {
		prefix := key(userID)
		c := t.consents().Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			rec, err := decode[storage.Consent](v)
			if err != nil {
				return err
			}
			consents = append(consents, rec)
		}
		return nil
	})
	return consents, wrap("list consents", err)
}

func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return wrap("delete consent", s.update(ctx, func(t *txn) error {
		c, err := get[storage.Consent](t.consents(), key(userID, clientID))
		if err != nil {
			return err
		}
		return t.removeConsent(c)
	}))
}

func (t *txn) removeConsent(c storage.Consent) error {
	if err := t.consents().Delete(key(c.UserID, c.ClientID)); err != nil {
		return err
	}
	return t.clearExpiry(c.ExpiresAt, familyConsent, c.UserID, c.ClientID)
}
