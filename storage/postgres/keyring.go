package postgres

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrWrongEncryptionKey means the configured keys.encryption_key is not
// the one the keyring in the database was sealed with.
var ErrWrongEncryptionKey = errors.New("keys.encryption_key does not decrypt the signing keys stored in the database (was it changed?)")

// Keyring keeps the provider's signing keys and named secrets in the
// database (migrations/0002_keyring.sql), so every replica serves the same
// JWKS and a rotation happens once. It satisfies keys.Vault, with basic
// types only, so this package does not import package keys.
//
// Key material and secrets are sealed with AES-256-GCM under the
// encryption key: a random 12-byte nonce per write, and the row's kid or
// name as additional data, so a sealed value moved to another row does
// not open. The manifest (kids, algorithms, dates) is public and stored
// plain, with a version that every write bumps: Stamp reads only that
// number, which is what replicas poll.
type Keyring struct {
	// pool is the keyring's own, two connections: the stamp is read on
	// the request path, sometimes by a request that holds a transaction
	// of the store's pool, and must never wait for one of those.
	pool *pgxpool.Pool
	aead cipher.AEAD
}

// Bounds on the keyring's queries. The stamp is read on the request path
// (once a second per replica), so it gives up sooner: the replica keeps
// serving the keys it has meanwhile.
const (
	keyringTimeout = 30 * time.Second
	stampTimeout   = 5 * time.Second
)

// notFound is a missing row, matching fs.ErrNotExist as keys.Vault asks.
type notFound string

func (e notFound) Error() string      { return string(e) }
func (notFound) Is(target error) bool { return target == fs.ErrNotExist }

// keyringLock is the advisory lock key that serialises keyring writers
// across replicas and CLIs.
const keyringLock = 0x6b657973 // "keys"

// sealVersion is the first byte of every sealed value, so the format can
// change later.
const sealVersion = 1

// checkPlain is what the keyring_check row seals.
const checkPlain = "smallsso keyring check v1"

// Keyring returns the keyring of the database, sealed with encryptionKey
// (32 bytes: keys.ParseEncryptionKey). The first keyring opened on a
// database records a check value; a later one given another key fails here
// with ErrWrongEncryptionKey, before anything is read or written.
func (s *Store) Keyring(encryptionKey []byte) (*Keyring, error) {
	if len(encryptionKey) != 32 {
		return nil, fmt.Errorf("postgres: keyring: the encryption key is %d bytes, want 32", len(encryptionKey))
	}
	block, err := aes.NewCipher(encryptionKey)
	if err != nil {
		return nil, fmt.Errorf("postgres: keyring: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("postgres: keyring: %w", err)
	}
	cfg := s.pool.Config().Copy()
	cfg.MaxConns, cfg.MinConns = 2, 0
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: keyring: %s", safeErr(err))
	}
	k := &Keyring{pool: pool, aead: aead}
	if err := k.check(); err != nil {
		pool.Close()
		return nil, err
	}
	s.closeWith(pool.Close)
	return k, nil
}

func (k *Keyring) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), keyringTimeout)
}

func (k *Keyring) check() error {
	ctx, cancel := k.ctx()
	defer cancel()
	sealed := k.seal("check", []byte(checkPlain))
	if _, err := k.pool.Exec(ctx, "INSERT INTO keyring_check (sealed) VALUES ($1) ON CONFLICT DO NOTHING", sealed); err != nil {
		return fmt.Errorf("postgres: keyring: %s", safeErr(err))
	}
	if err := k.pool.QueryRow(ctx, "SELECT sealed FROM keyring_check").Scan(&sealed); err != nil {
		return fmt.Errorf("postgres: keyring: %s", safeErr(err))
	}
	plain, err := k.open("check", sealed)
	if err != nil || subtle.ConstantTimeCompare(plain, []byte(checkPlain)) != 1 {
		return ErrWrongEncryptionKey
	}
	return nil
}

// seal encrypts plain for the row called aad: version, nonce, ciphertext.
func (k *Keyring) seal(aad string, plain []byte) []byte {
	out := make([]byte, 1+k.aead.NonceSize(), 1+k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return k.aead.Seal(out, out[1:], plain, []byte(aad))
}

func (k *Keyring) open(aad string, sealed []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < 1+n+k.aead.Overhead() || sealed[0] != sealVersion {
		return nil, errors.New("not a sealed value")
	}
	return k.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(aad))
}

func keyAAD(kid string) string     { return "key " + kid }
func secretAAD(name string) string { return "secret " + name }

// Stamp is the manifest's version, one tiny query.
func (k *Keyring) Stamp() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stampTimeout)
	defer cancel()
	var v int64
	err := k.pool.QueryRow(ctx, "SELECT version FROM keyring_manifest").Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("postgres: keyring: %s", safeErr(err))
	}
	return strconv.FormatInt(v, 10), nil
}

func (k *Keyring) ReadManifest() ([]byte, string, error) {
	ctx, cancel := k.ctx()
	defer cancel()
	return readManifest(ctx, k.pool)
}

func readManifest(ctx context.Context, q querier) ([]byte, string, error) {
	var (
		v   int64
		man string
	)
	err := q.QueryRow(ctx, "SELECT version, manifest::text FROM keyring_manifest").Scan(&v, &man)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", notFound("postgres: keyring: no manifest in the database yet")
	}
	if err != nil {
		return nil, "", fmt.Errorf("postgres: keyring: read the manifest: %s", safeErr(err))
	}
	return []byte(man), strconv.FormatInt(v, 10), nil
}

func (k *Keyring) ReadKey(kid string) ([]byte, error) {
	ctx, cancel := k.ctx()
	defer cancel()
	return k.readKey(ctx, k.pool, kid)
}

func (k *Keyring) readKey(ctx context.Context, q querier, kid string) ([]byte, error) {
	var sealed []byte
	err := q.QueryRow(ctx, "SELECT sealed FROM keyring_keys WHERE kid = $1", kid).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("postgres: keyring: key " + kid + " is not in the database")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: keyring: read key %s: %s", kid, safeErr(err))
	}
	plain, err := k.open(keyAAD(kid), sealed)
	if err != nil {
		return nil, fmt.Errorf("%w (key %s)", ErrWrongEncryptionKey, kid)
	}
	return plain, nil
}

// Update runs fn in a transaction that holds the keyring's advisory lock,
// so the new key rows, the manifest and its version bump commit together
// or not at all, and writers in every replica take turns.
func (k *Keyring) Update(fn func(manifest []byte, readKey func(kid string) ([]byte, error)) (next []byte, put map[string][]byte, remove []string, err error)) (string, error) {
	ctx, cancel := k.ctx()
	defer cancel()
	var stamp string
	// Read committed: each statement sees what committed before it, so
	// the manifest read after the lock is the last writer's.
	err := pgx.BeginTxFunc(ctx, k.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", keyringLock); err != nil {
			return fmt.Errorf("postgres: keyring: lock: %s", safeErr(err))
		}
		cur, curStamp, err := readManifest(ctx, tx)
		if errors.Is(err, fs.ErrNotExist) {
			cur, curStamp, err = nil, "", nil
		}
		if err != nil {
			return err
		}
		next, put, remove, err := fn(cur, func(kid string) ([]byte, error) { return k.readKey(ctx, tx, kid) })
		if err != nil {
			return err
		}
		if next == nil {
			stamp = curStamp
			return nil
		}
		for kid, material := range put {
			if _, err := tx.Exec(ctx, `INSERT INTO keyring_keys (kid, sealed) VALUES ($1, $2)
				ON CONFLICT (kid) DO UPDATE SET sealed = excluded.sealed`, kid, k.seal(keyAAD(kid), material)); err != nil {
				return fmt.Errorf("postgres: keyring: store key %s: %s", kid, safeErr(err))
			}
		}
		if len(remove) > 0 {
			if _, err := tx.Exec(ctx, "DELETE FROM keyring_keys WHERE kid = ANY($1)", remove); err != nil {
				return fmt.Errorf("postgres: keyring: remove keys: %s", safeErr(err))
			}
		}
		var v int64
		err = tx.QueryRow(ctx, `INSERT INTO keyring_manifest (version, manifest, updated_at) VALUES (1, $1::jsonb, now())
			ON CONFLICT (id) DO UPDATE SET version = keyring_manifest.version + 1, manifest = excluded.manifest, updated_at = now()
			RETURNING version`, string(next)).Scan(&v)
		if err != nil {
			return fmt.Errorf("postgres: keyring: store the manifest: %s", safeErr(err))
		}
		stamp = strconv.FormatInt(v, 10)
		return nil
	})
	if err != nil {
		return "", err
	}
	return stamp, nil
}

func (k *Keyring) ReadSecret(name string) ([]byte, error) {
	ctx, cancel := k.ctx()
	defer cancel()
	return k.readSecret(ctx, name)
}

func (k *Keyring) readSecret(ctx context.Context, name string) ([]byte, error) {
	var sealed []byte
	err := k.pool.QueryRow(ctx, "SELECT sealed FROM keyring_secrets WHERE name = $1", name).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("postgres: keyring: secret " + name + " is not in the database")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: keyring: read secret %s: %s", name, safeErr(err))
	}
	plain, err := k.open(secretAAD(name), sealed)
	if err != nil {
		return nil, fmt.Errorf("%w (secret %s)", ErrWrongEncryptionKey, name)
	}
	return plain, nil
}

// CreateSecret inserts value unless the secret exists, then reads what is
// stored: racing replicas all end with the winner's value.
func (k *Keyring) CreateSecret(name string, value []byte) ([]byte, error) {
	if name == "" {
		return nil, errors.New("postgres: keyring: empty secret name")
	}
	ctx, cancel := k.ctx()
	defer cancel()
	if _, err := k.pool.Exec(ctx, "INSERT INTO keyring_secrets (name, sealed) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name, k.seal(secretAAD(name), value)); err != nil {
		return nil, fmt.Errorf("postgres: keyring: store secret %s: %s", name, safeErr(err))
	}
	return k.readSecret(ctx, name)
}

func (k *Keyring) SecretNames() ([]string, error) {
	ctx, cancel := k.ctx()
	defer cancel()
	rows, err := k.pool.Query(ctx, "SELECT name FROM keyring_secrets ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("postgres: keyring: list secrets: %s", safeErr(err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: keyring: list secrets: %s", safeErr(err))
	}
	return names, nil
}
