package bolt

import (
	"context"
	"errors"

	"github.com/smallsso/provider/storage"
)

func (s *Store) CreateBrowserSession(ctx context.Context, sess storage.BrowserSession) error {
	return wrap("create browser session", s.update(ctx, func(t *txn) error {
		if t.sessions().Get([]byte(sess.ID)) != nil {
			return storage.ErrAlreadyExists
		}
		if err := put(t.sessions(), []byte(sess.ID), sess); err != nil {
			return err
		}
		return t.setExpiry(sess.ExpiresAt, familySession, sess.ID)
	}))
}

func (s *Store) GetBrowserSession(ctx context.Context, id string) (storage.BrowserSession, error) {
	var sess storage.BrowserSession
	err := s.view(ctx, func(t *txn) error {
		var err error
		sess, err = get[storage.BrowserSession](t.sessions(), []byte(id))
		return err
	})
	return sess, wrap("get browser session", err)
}

func (s *Store) DeleteBrowserSession(ctx context.Context, id string) error {
	return wrap("delete browser session", s.update(ctx, func(t *txn) error {
		sess, err := get[storage.BrowserSession](t.sessions(), []byte(id))
		if err != nil {
			return err
		}
		return t.removeSession(sess)
	}))
}

func (t *txn) removeSession(sess storage.BrowserSession) error {
	if err := t.sessions().Delete([]byte(sess.ID)); err != nil {
		return err
	}
	return t.clearExpiry(sess.ExpiresAt, familySession, sess.ID)
}

func (s *Store) UpdateBrowserSession(ctx context.Context, id string, fn func(storage.BrowserSession) (storage.BrowserSession, error)) error {
	var fnErr error
	err := s.update(ctx, func(t *txn) error {
		old, err := get[storage.BrowserSession](t.sessions(), []byte(id))
		if err != nil {
			return err
		}
		sess, err := fn(old)
		if err != nil {
			fnErr = err
			return err
		}
		if sess.ID != id {
			return errors.New("id cannot change")
		}
		if !sess.ExpiresAt.Equal(old.ExpiresAt) {
			if err := t.clearExpiry(old.ExpiresAt, familySession, id); err != nil {
				return err
			}
			if err := t.setExpiry(sess.ExpiresAt, familySession, id); err != nil {
				return err
			}
		}
		return put(t.sessions(), []byte(id), sess)
	})
	if fnErr != nil {
		return fnErr
	}
	return wrap("update browser session", err)
}

// ListUserSessions scans every session: sessions have no index by user,
// and only a password change and a server-side logout look them up so.
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]storage.BrowserSession, error) {
	var out []storage.BrowserSession
	err := s.view(ctx, func(t *txn) error {
		return t.sessions().ForEach(func(_, v []byte) error {
			sess, err := decode[storage.BrowserSession](v)
			if err != nil {
				return err
			}
			if sess.UserID == userID {
				out = append(out, sess)
			}
			return nil
		})
	})
	return out, wrap("list browser sessions of user", err)
}
