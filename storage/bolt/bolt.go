// Package bolt keeps the provider's records in one bbolt file.
//
// Bucket layout (values are JSON envelopes {"v":1,"data":<record>}, but
// token records, which are compact CBOR of record version 2: tokencodec.go):
//
//	meta               "schema" → layout version; "token_subjects" → "1"
//	                   once that index holds every token (subjects.go);
//	                   "ready_probe" → time of the last readiness probe
//	                   (ready.go)
//	users              ID → User
//	users_by_name      username → ID
//	clients            ID → Client
//	trusted_issuers    ID → TrustedIssuer
//	tokens/<kind>      signature → TokenRequest, one nested bucket per kind
//	token_request_ids  key(kind, requestID, signature) → empty
//	token_subjects     key(subject, kind, clientID, signature) → empty,
//	                   for tokens that have a subject
//	sessions           ID → BrowserSession
//	consents           key(userID, clientID) → Consent
//	jti                ID → JTI
//	factors            user ID → Factors (added without a schema bump: a
//	                   file without the bucket gets it at Open)
//	expiry             8-byte big-endian unix nanos ‖ key(family, ...) → empty;
//	                   a token's kept refresh answer has its own entry
//	                   (family "replay") at its ReplayUntil
//
// key (keys.go) length-prefixes every part, so the index and consent
// buckets answer "all of one user", "all of one request" or "all that one
// subject granted one client" with a prefix seek, and the expiry bucket
// turns GarbageCollect into a range scan from the start of the bucket up
// to now.
package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/owner"
)

// ErrLocked means another process holds the database file open. The CLI
// tells it apart so it can go through the running server instead.
var ErrLocked = errors.New("database is locked by another process")

const (
	// schemaVersion 2 added the token_subjects index and compact token
	// records. A file of version 1 is upgraded at Open; a build that reads
	// 1 refuses a file of 2 instead of writing tokens the index misses.
	schemaVersion  = "2"
	defaultTimeout = time.Second
)

const (
	bucketMeta       = "meta"
	bucketUsers      = "users"
	bucketUserNames  = "users_by_name"
	bucketClients    = "clients"
	bucketTrust      = "trusted_issuers"
	bucketTokens     = "tokens"
	bucketRequestIDs = "token_request_ids"
	bucketSessions   = "sessions"
	bucketConsents   = "consents"
	bucketJTIs       = "jti"
	bucketExpiry     = "expiry"
	bucketFactors    = "factors"

	keySchema = "schema"
)

// Options tunes Open.
type Options struct {
	// Timeout bounds the wait for the file lock. Zero means one second.
	// bbolt's own zero means "wait forever", which would hang a CLI command
	// behind a running server, so it is never passed through.
	Timeout time.Duration
	// GCChunkRecords bounds how many expired records one GarbageCollect
	// transaction removes; zero means 256. GCChunkTime bounds the time one
	// such transaction spends removing them (its commit comes on top);
	// zero means 10ms. Between two chunks other writers get the lock.
	GCChunkRecords int
	GCChunkTime    time.Duration
	// Now is the clock of the readiness check (ready.go); nil means
	// time.Now.
	Now func() time.Time
}

// Store is a storage.Store over one bbolt file. Every write is committed
// and synced before the method returns; concurrent writes share a commit
// (batch.go).
//
// Update closures (UpdateUser, UpdateClient) run while the store's single
// write lock is held: they must be quick and must not call the Store with a
// context other than the one they were given.
type Store struct {
	db *bbolt.DB
	w  *writer
	gc gcLimits
	// clientCache and userCache keep decoded records (decoded.go).
	clientCache *decodedCache[storage.Client]
	userCache   *decodedCache[storage.User]
	// ready is the state of the readiness check (ready.go).
	ready *readiness
}

// Open opens or creates the database at path, creating its directory with
// mode 0700 and the file with mode 0600. If another process holds the file,
// Open fails with an error matching ErrLocked after opts.Timeout.
func Open(path string, opts Options) (*Store, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open bolt: %w", err)
	}
	_, statErr := os.Lstat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	db, err := openLocked(path, &bbolt.Options{
		Timeout: timeout,
		// The freelist is not written at every commit: after the janitor
		// frees many pages it grows to megabytes, and every commit would
		// write all of it. Close writes it once, so a clean restart reads
		// it back; after a crash bbolt rebuilds it by scanning the file
		// (PreLoadFreelist: at open, not in the first request).
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		PreLoadFreelist: true,
	})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, fmt.Errorf("open bolt %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, openError(path, err)
	}
	if created {
		// A new file made by root (an admin command while the server is
		// stopped) gets its directory's owner, the server's user.
		if err := owner.Like(path, filepath.Dir(path)); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open bolt %s: %w", path, err)
		}
	}
	if err := db.Update(initSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open bolt %s: %w", path, err)
	}
	ready := newReadiness(opts.Now)
	return &Store{
		db: db, w: &writer{db: db, failed: ready.writeFailed}, gc: newGCLimits(opts),
		clientCache: newDecodedCache(cloneClient), userCache: newDecodedCache(cloneUser),
		ready: ready,
	}, nil
}

// Close writes the freelist (see Open) and releases the file. It waits
// for an open transaction to finish.
func (s *Store) Close() error {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if s.w.closed {
		return nil
	}
	// Writers waiting for the open batch get their commit; later ones are
	// refused.
	s.w.close()
	// Wait out a commit still on its way to disk (it reads the flag),
	// then write the freelist with one last commit.
	err := s.db.Update(func(*bbolt.Tx) error { return nil })
	s.db.NoFreelistSync = false
	err = errors.Join(err, s.db.Update(func(*bbolt.Tx) error { return nil }))
	return wrap("close bolt", errors.Join(err, s.db.Close()))
}

// initSchema creates every bucket a fresh file needs and refuses a file
// written with another layout rather than misreading it.
func initSchema(tx *bbolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
	if err != nil {
		return err
	}
	switch v := meta.Get([]byte(keySchema)); {
	case v == nil, string(v) == "1":
		// New, or version 1: its records still read, and the subject
		// index is built below (initSubjectIndex).
		if err := meta.Put([]byte(keySchema), []byte(schemaVersion)); err != nil {
			return err
		}
	case string(v) != schemaVersion:
		return fmt.Errorf("schema version %q, this build reads %q", v, schemaVersion)
	}
	for _, name := range []string{
		bucketUsers, bucketUserNames, bucketClients, bucketTrust, bucketTokens, bucketRequestIDs,
		bucketSessions, bucketConsents, bucketJTIs, bucketExpiry, bucketFactors,
	} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	tokens := tx.Bucket([]byte(bucketTokens))
	for _, kind := range storage.TokenKinds {
		if _, err := tokens.CreateBucketIfNotExists([]byte(kind)); err != nil {
			return fmt.Errorf("create bucket %s/%s: %w", bucketTokens, kind, err)
		}
	}
	return initSubjectIndex(tx)
}

// wrap prefixes err with the operation, keeping it matchable by errors.Is.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

var _ storage.Store = (*Store)(nil)
