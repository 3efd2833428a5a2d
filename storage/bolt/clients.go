package bolt

import (
	"context"
	"errors"

	"github.com/smallsso/provider/storage"
)

func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	return wrap("create client", s.update(ctx, func(t *txn) error {
		if t.clients().Get([]byte(c.ID)) != nil {
			return storage.ErrAlreadyExists
		}
		return put(t.clients(), []byte(c.ID), c)
	}))
}

func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	var c storage.Client
	err := s.view(ctx, func(t *txn) error {
		var err error
		c, err = s.clientCache.get(t.clients(), []byte(id))
		return err
	})
	return c, wrap("get client", err)
}

func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	var clients []storage.Client
	err := s.view(ctx, func(t *txn) error {
		var err error
		clients, err = list[storage.Client](t.clients())
		return err
	})
	return clients, wrap("list clients", err)
}

func (s *Store) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) error {
	var fnErr error
	err := s.update(ctx, func(t *txn) error {
		old, err := get[storage.Client](t.clients(), []byte(id))
		if err != nil {
			return err
		}
		c, err := fn(old)
		if err != nil {
			fnErr = err
			return err
		}
		if c.ID != id {
			return errors.New("id cannot change")
		}
		return put(t.clients(), []byte(id), c)
	})
	if fnErr != nil {
		return fnErr
	}
	return wrap("update client", err)
}

func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return wrap("delete client", s.update(ctx, func(t *txn) error {
		if t.clients().Get([]byte(id)) == nil {
			return storage.ErrNotFound
		}
		return t.clients().Delete([]byte(id))
	}))
}
