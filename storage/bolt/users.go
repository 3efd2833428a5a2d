package bolt

import (
	"context"
	"errors"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
)

func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	return wrap("create user", s.update(ctx, func(t *txn) error {
		// Checked up front because inside a caller's transaction a failed
		// second Put would leave the first one behind.
		if u.ID == "" || u.Username == "" {
			return errors.New("id and username are required")
		}
		if t.users().Get([]byte(u.ID)) != nil || t.userNames().Get([]byte(u.Username)) != nil {
			return storage.ErrAlreadyExists
		}
		if err := put(t.users(), []byte(u.ID), u); err != nil {
			return err
		}
		return t.userNames().Put([]byte(u.Username), []byte(u.ID))
	}))
}

func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	var u storage.User
	err := s.view(ctx, func(t *txn) error {
		var err error
		u, err = s.userCache.get(t.users(), []byte(id))
		return err
	})
	return u, wrap("get user", err)
}

func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	var u storage.User
	err := s.view(ctx, func(t *txn) error {
		id := t.userNames().Get([]byte(username))
		if id == nil {
			return storage.ErrNotFound
		}
		var err error
		u, err = get[storage.User](t.users(), id)
		return err
	})
	return u, wrap("get user by username", err)
}

func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	var users []storage.User
	err := s.view(ctx, func(t *txn) error {
		var err error
		users, err = list[storage.User](t.users())
		return err
	})
	return users, wrap("list users", err)
}

func (s *Store) UpdateUser(ctx context.Context, id string, fn func(storage.User) (storage.User, error)) error {
	var fnErr error
	err := s.update(ctx, func(t *txn) error {
		old, err := get[storage.User](t.users(), []byte(id))
		if err != nil {
			return err
		}
		u, err := fn(old)
		if err != nil {
			fnErr = err
			return err
		}
		if u.ID != id {
			return errors.New("id cannot change")
		}
		renamed := u.Username != old.Username
		if renamed {
			if u.Username == "" {
				return errors.New("username is required")
			}
			if t.userNames().Get([]byte(u.Username)) != nil {
				return storage.ErrAlreadyExists
			}
		}
		if err := put(t.users(), []byte(id), u); err != nil {
			return err
		}
		if !renamed {
			return nil
		}
		if err := t.userNames().Delete([]byte(old.Username)); err != nil {
			return err
		}
		return t.userNames().Put([]byte(u.Username), []byte(id))
	})
	if fnErr != nil {
		return fnErr
	}
	return wrap("update user", err)
}

func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return wrap("delete user", s.update(ctx, func(t *txn) error {
		u, err := get[storage.User](t.users(), []byte(id))
		if err != nil {
			return err
		}
		if err := t.users().Delete([]byte(id)); err != nil {
			return err
		}
		if err := t.factors().Delete([]byte(id)); err != nil {
			return err
		}
		return t.userNames().Delete([]byte(u.Username))
	}))
}

// list decodes every value of b, in key order.
func list[T any](b *bbolt.Bucket) ([]T, error) {
	var out []T
	err := b.ForEach(func(_, v []byte) error {
		rec, err := decode[T](v)
		if err != nil {
			return err
		}
		out = append(out, rec)
		return nil
	})
	return out, err
}
