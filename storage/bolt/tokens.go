package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
)

// Error prefixes name the kind but never the signature: a signature is
// half of a bearer credential and error text ends up in logs.

func (s *Store) CreateToken(ctx context.Context, r storage.TokenRequest) error {
	return wrap("create "+string(r.Kind)+" token", s.update(ctx, func(t *txn) error {
		b, err := t.tokenBucket(r.Kind)
		if err != nil {
			return err
		}
		if r.Signature == "" {
			return errors.New("signature is required")
		}
		if b.Get([]byte(r.Signature)) != nil {
			return storage.ErrAlreadyExists
		}
		if err := put(b, []byte(r.Signature), r); err != nil {
			return err
		}
		if err := t.requestIDs().Put(key(string(r.Kind), r.RequestID, r.Signature), nil); err != nil {
			return err
		}
		if err := t.indexSubject(r); err != nil {
			return err
		}
		return t.setExpiry(r.ExpiresAt, familyToken, string(r.Kind), r.Signature)
	}))
}

func (s *Store) GetToken(ctx context.Context, kind storage.TokenKind, signature string) (storage.TokenRequest, error) {
	var r storage.TokenRequest
	err := s.view(ctx, func(t *txn) error {
		b, err := t.tokenBucket(kind)
		if err != nil {
			return err
		}
		r, err = get[storage.TokenRequest](b, []byte(signature))
		return err
	})
	return r, wrap("get "+string(kind)+" token", err)
}

func (s *Store) DeleteToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	return wrap("delete "+string(kind)+" token", s.update(ctx, func(t *txn) error {
		b, r, err := t.tokenRecord(kind, signature)
		if err != nil {
			return err
		}
		return t.removeToken(b, r)
	}))
}

func (s *Store) DeactivateToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	return wrap("deactivate "+string(kind)+" token", s.update(ctx, func(t *txn) error {
		b, r, err := t.tokenRecord(kind, signature)
		if err != nil {
			return err
		}
		if !r.Active {
			return storage.ErrInactive
		}
		r.Active = false
		// Signature, request ID and expiry are unchanged, so the indexes are too.
		return put(b, []byte(signature), r)
	}))
}

func (s *Store) SetTokenReplay(ctx context.Context, kind storage.TokenKind, signature string, replay []byte, until time.Time) error {
	return wrap("set "+string(kind)+" token replay", s.update(ctx, func(t *txn) error {
		b, r, err := t.tokenRecord(kind, signature)
		if err != nil {
			return err
		}
		if r.Active {
			return storage.ErrAlreadyExists
		}
		// Signature, request ID and expiry are unchanged, so those indexes
		// are too; the answer has an expiry entry of its own.
		if err := t.clearExpiry(r.ReplayUntil, familyReplay, string(kind), signature); err != nil {
			return err
		}
		r.Replay, r.ReplayUntil = replay, until
		if len(replay) == 0 {
			r.Replay, r.ReplayUntil = nil, time.Time{}
		}
		if err := put(b, []byte(signature), r); err != nil {
			return err
		}
		return t.setExpiry(r.ReplayUntil, familyReplay, string(kind), signature)
	}))
}

func (s *Store) RevokeByRequestID(ctx context.Context, kind storage.TokenKind, reqID string) error {
	return wrap("revoke "+string(kind)+" tokens", s.update(ctx, func(t *txn) error {
		b, err := t.tokenBucket(kind)
		if err != nil {
			return err
		}
		// Collect first: deleting under a live cursor can skip keys.
		prefix := key(string(kind), reqID)
		var entries [][]byte
		c := t.requestIDs().Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			entries = append(entries, bytes.Clone(k))
		}
		for _, entry := range entries {
			if err := t.revokeEntry(b, reqID, entry); err != nil {
				return err
			}
		}
		return nil
	}))
}

// revokeEntry removes the token a request ID index entry points at, if it
// belongs to reqID. Any other entry is stale (removeToken keeps the index
// in step, so that means damage, not routine) and is only dropped: it must
// never revoke a token of another request.
func (t *txn) revokeEntry(b *bbolt.Bucket, reqID string, entry []byte) error {
	if parts, err := splitKey(entry); err == nil && len(parts) == 3 {
		r, err := get[storage.TokenRequest](b, []byte(parts[2]))
		switch {
		case err == nil && r.RequestID == reqID:
			return t.removeToken(b, r)
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return err
		}
	}
	return t.requestIDs().Delete(entry)
}

// tokenBucket returns the nested bucket of kind. An unknown kind is an
// error rather than ErrNotFound: it is a caller bug, not a missing record.
func (t *txn) tokenBucket(kind storage.TokenKind) (*bbolt.Bucket, error) {
	b := t.tokens().Bucket([]byte(kind))
	if b == nil {
		return nil, fmt.Errorf("unknown token kind %q", kind)
	}
	return b, nil
}

// tokenRecord is the stored record of kind with signature, and the bucket
// it is in.
func (t *txn) tokenRecord(kind storage.TokenKind, signature string) (*bbolt.Bucket, storage.TokenRequest, error) {
	b, err := t.tokenBucket(kind)
	if err != nil {
		return nil, storage.TokenRequest{}, err
	}
	r, err := get[storage.TokenRequest](b, []byte(signature))
	return b, r, err
}

// removeToken deletes r, as stored, with its index entries.
func (t *txn) removeToken(b *bbolt.Bucket, r storage.TokenRequest) error {
	if err := b.Delete([]byte(r.Signature)); err != nil {
		return err
	}
	if err := t.requestIDs().Delete(key(string(r.Kind), r.RequestID, r.Signature)); err != nil {
		return err
	}
	if err := t.unindexSubject(r); err != nil {
		return err
	}
	if err := t.clearExpiry(r.ReplayUntil, familyReplay, string(r.Kind), r.Signature); err != nil {
		return err
	}
	return t.clearExpiry(r.ExpiresAt, familyToken, string(r.Kind), r.Signature)
}
