package bolt

import (
	"context"

	"github.com/smallsso/provider/storage"
)

func (s *Store) CreateTrustedIssuer(ctx context.Context, ti storage.TrustedIssuer) error {
	return wrap("create trusted issuer", s.update(ctx, func(t *txn) error {
		if t.trust().Get([]byte(ti.ID)) != nil {
			return storage.ErrAlreadyExists
		}
		return put(t.trust(), []byte(ti.ID), ti)
	}))
}

func (s *Store) GetTrustedIssuer(ctx context.Context, id string) (storage.TrustedIssuer, error) {
	var ti storage.TrustedIssuer
	err := s.view(ctx, func(t *txn) error {
		var err error
		ti, err = get[storage.TrustedIssuer](t.trust(), []byte(id))
		return err
	})
	return ti, wrap("get trusted issuer", err)
}

func (s *Store) ListTrustedIssuers(ctx context.Context) ([]storage.TrustedIssuer, error) {
	var all []storage.TrustedIssuer
	err := s.view(ctx, func(t *txn) error {
		var err error
		all, err = list[storage.TrustedIssuer](t.trust())
		return err
	})
	return all, wrap("list trusted issuers", err)
}

func (s *Store) DeleteTrustedIssuer(ctx context.Context, id string) error {
	return wrap("delete trusted issuer", s.update(ctx, func(t *txn) error {
		if t.trust().Get([]byte(id)) == nil {
			return storage.ErrNotFound
		}
		return t.trust().Delete([]byte(id))
	}))
}
