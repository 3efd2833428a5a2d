package bolt

import (
	"bytes"
	"context"
	"errors"

	"github.com/smallsso/provider/storage"
)

// Both methods read the subject index (subjects.go), never the tokens of
// other subjects. An index entry is trusted only once the token it names
// is found with the same subject and client; any other entry is stale.

func (s *Store) ListSubjectTokens(ctx context.Context, kind storage.TokenKind, subject string) ([]storage.TokenRequest, error) {
	var out []storage.TokenRequest
	err := s.view(ctx, func(t *txn) error {
		out = nil
		b, err := t.tokenBucket(kind)
		if err != nil {
			return err
		}
		idx, err := t.subjects()
		if err != nil || subject == "" {
			return err
		}
		prefix := key(subject, string(kind))
		c := idx.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			parts, err := splitKey(k)
			if err != nil || len(parts) != 4 {
				continue
			}
			r, err := get[storage.TokenRequest](b, []byte(parts[3]))
			switch {
			case errors.Is(err, storage.ErrNotFound):
				continue
			case err != nil:
				return err
			case r.Subject == subject && r.ClientID == parts[2]:
				out = append(out, r)
			}
		}
		return nil
	})
	return out, wrap("list "+string(kind)+" tokens of subject", err)
}

func (s *Store) RevokeSubjectClient(ctx context.Context, subject, clientID string) error {
	return wrap("revoke tokens of subject for client", s.update(ctx, func(t *txn) error {
		idx, err := t.subjects()
		if err != nil || subject == "" {
			return err
		}
		for _, kind := range storage.TokenKinds {
			b, err := t.tokenBucket(kind)
			if err != nil {
				return err
			}
			// Collect first: deleting under a live cursor can skip keys.
			prefix := key(subject, string(kind), clientID)
			var entries [][]byte
			c := idx.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				entries = append(entries, bytes.Clone(k))
			}
			for _, entry := range entries {
				parts, err := splitKey(entry)
				if err != nil || len(parts) != 4 {
					if err := idx.Delete(entry); err != nil {
						return err
					}
					continue
				}
				r, err := get[storage.TokenRequest](b, []byte(parts[3]))
				switch {
				case err == nil && r.Subject == subject && r.ClientID == clientID:
					err = t.removeToken(b, r)
				case err == nil || errors.Is(err, storage.ErrNotFound):
					err = idx.Delete(entry)
				}
				if err != nil {
					return err
				}
			}
		}
		return nil
	}))
}
