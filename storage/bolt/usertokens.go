package bolt

import (
	"context"

	"github.com/smallsso/provider/storage"
)

// Tokens have no index by subject: the account page is the only reader,
// and a full scan of one kind is cheap at the sizes bolt is meant for.

func (s *Store) ListSubjectTokens(ctx context.Context, kind storage.TokenKind, subject string) ([]storage.TokenRequest, error) {
	var out []storage.TokenRequest
	err := s.view(ctx, func(t *txn) error {
		b, err := t.tokenBucket(kind)
		if err != nil {
			return err
		}
		return b.ForEach(func(_, v []byte) error {
			r, err := decode[storage.TokenRequest](v)
			if err != nil {
				return err
			}
			if r.Subject == subject {
				out = append(out, r)
			}
			return nil
		})
	})
	return out, wrap("list "+string(kind)+" tokens of subject", err)
}

func (s *Store) RevokeSubjectClient(ctx context.Context, subject, clientID string) error {
	return wrap("revoke tokens of subject for client", s.update(ctx, func(t *txn) error {
		for _, kind := range storage.TokenKinds {
			b, err := t.tokenBucket(kind)
			if err != nil {
				return err
			}
			// Collect first: deleting under a live cursor can skip keys.
			var doomed []storage.TokenRequest
			err = b.ForEach(func(_, v []byte) error {
				r, err := decode[storage.TokenRequest](v)
				if err != nil {
					return err
				}
				if r.Subject == subject && r.ClientID == clientID {
					doomed = append(doomed, r)
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, r := range doomed {
				if err := t.removeToken(b, r); err != nil {
					return err
				}
			}
		}
		return nil
	}))
}
