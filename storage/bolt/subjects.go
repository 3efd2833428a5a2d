package bolt

import (
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
)

// The subject index lists the tokens a person granted, by kind and client:
// key(subject, kind, clientID, signature) → empty. ListSubjectTokens reads
// the prefix key(subject, kind) and RevokeSubjectClient the prefix
// key(subject, kind, clientID), so neither reads other people's tokens.
// Tokens without a subject (client_credentials) are not indexed: nothing
// lists them by subject, and issuing them costs no extra write.
//
// Files written before the index existed get it at Open: the bucket is
// created and filled from the token buckets in the same transaction that
// checks the schema, once, and meta's "token_subjects" records that it is
// done. The schema version stays "1": older builds open the file as before
// and ignore the bucket. A token an older build writes into a file that
// already has the index is not in it, and ListSubjectTokens and
// RevokeSubjectClient miss it; deleting meta's "token_subjects" key makes
// the next Open rebuild the index. Entries of tokens an older build
// deleted are stale and skipped (or dropped by RevokeSubjectClient).
const (
	bucketSubjects     = "token_subjects"
	keySubjectsIndexed = "token_subjects"
	subjectsIndexed    = "1"
)

// subjects returns the subject index of t's transaction. It is looked up
// here rather than in newTxn so the bucket is one file's concern.
func (t *txn) subjects() (*bbolt.Bucket, error) {
	b := t.tokens().Tx().Bucket([]byte(bucketSubjects))
	if b == nil {
		return nil, fmt.Errorf("bucket %s missing", bucketSubjects)
	}
	return b, nil
}

func subjectKey(subject string, kind storage.TokenKind, clientID, signature string) []byte {
	return key(subject, string(kind), clientID, signature)
}

// indexSubject adds r to the subject index, if r has a subject.
func (t *txn) indexSubject(r storage.TokenRequest) error {
	if r.Subject == "" {
		return nil
	}
	b, err := t.subjects()
	if err != nil {
		return err
	}
	return b.Put(subjectKey(r.Subject, r.Kind, r.ClientID, r.Signature), nil)
}

// unindexSubject removes r, as stored, from the subject index.
func (t *txn) unindexSubject(r storage.TokenRequest) error {
	if r.Subject == "" {
		return nil
	}
	b, err := t.subjects()
	if err != nil {
		return err
	}
	return b.Delete(subjectKey(r.Subject, r.Kind, r.ClientID, r.Signature))
}

// initSubjectIndex creates the subject index and, the first time, fills it
// from every stored token. A record that does not decode is left out: no
// read can return it either.
func initSubjectIndex(tx *bbolt.Tx) error {
	idx, err := tx.CreateBucketIfNotExists([]byte(bucketSubjects))
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketSubjects, err)
	}
	meta := tx.Bucket([]byte(bucketMeta))
	if string(meta.Get([]byte(keySubjectsIndexed))) == subjectsIndexed {
		return nil
	}
	tokens := tx.Bucket([]byte(bucketTokens))
	for _, kind := range storage.TokenKinds {
		err := tokens.Bucket([]byte(kind)).ForEach(func(sig, v []byte) error {
			r, err := decode[storage.TokenRequest](v)
			if err != nil || r.Subject == "" {
				return nil
			}
			return idx.Put(subjectKey(r.Subject, kind, r.ClientID, string(sig)), nil)
		})
		if err != nil {
			return fmt.Errorf("index %s tokens by subject: %w", kind, err)
		}
	}
	return meta.Put([]byte(keySubjectsIndexed), []byte(subjectsIndexed))
}
