package secret

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/singleflight"
)

// Argon2id parameters from the OWASP password storage cheat sheet (19 MiB,
// two passes): strong enough at rest, cheap enough that a small VM survives a
// burst of sign-ins. They are written into every hash, so raising them later
// does not break old hashes.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

var ErrMismatch = errors.New("hash: secret does not match")

// UnknownAccountHash is checked against when a sign-in names an account
// that does not exist, so that case costs what a wrong password costs. It
// is the hash of a random password nobody kept, made with the parameters
// Hash uses (a test keeps them equal); a constant, so a start does not
// spend an argon2id run and its memory on it.
const UnknownAccountHash = "$argon2id$v=19$m=19456,t=2,p=1$TWn99q3tS8rTY5zVlMZgzg$GMQOP+De4nppkumjFcTd9Rrv6lIUfudUW6KxLSHqd5Y"

// argonSlots bounds how many argon2id runs happen at once. Each takes
// argonMemoryKiB of memory; without a bound, a burst of sign-ins on a small
// VM allocates 19 MiB per request at once and thrashes. Queuing costs the
// same CPU and keeps memory flat.
var argonSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

func argonKey(secret, salt []byte, t, m uint32, p uint8, n uint32) []byte {
	argonSlots <- struct{}{}
	defer func() { <-argonSlots }()
	return argon2.IDKey(secret, salt, t, m, p, n)
}

// Hash hashes a password or client secret with argon2id into the PHC
// string format ($argon2id$v=19$m=…,t=…,p=…$salt$hash). x/crypto/argon2 has
// no PHC encoder, so the few lines of formatting are ours.
func Hash(secret string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash: %w", err)
	}
	key := argonKey([]byte(secret), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Check reports whether secret matches hash, which may be argon2id
// (ours) or bcrypt (accepted so operators can paste `htpasswd -B` output
// into secret_hash).
func Check(hash, secret string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		return checkArgon2id(hash, secret)
	case isBcrypt(hash):
		if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(secret)); err != nil {
			return ErrMismatch
		}
		return nil
	default:
		return errors.New("hash: unknown hash format")
	}
}

// ValidHash reports whether hash is in a format Check understands.
func ValidHash(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		_, _, _, err := parseArgon2id(hash)
		return err
	case isBcrypt(hash):
		_, err := bcrypt.Cost([]byte(hash))
		return err
	default:
		return errors.New("not an argon2id or bcrypt hash")
	}
}

func isBcrypt(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
}

func parseArgon2id(hash string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("malformed argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errors.New("unsupported argon2id version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, nil, nil, errors.New("malformed argon2id parameters")
	}
	if p.memory == 0 || p.time == 0 || p.threads == 0 || p.memory > 1<<22 || p.time > 64 {
		return p, nil, nil, errors.New("argon2id parameters out of range")
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 {
		return p, nil, nil, errors.New("malformed argon2id salt or key")
	}
	return p, salt, key, nil
}

func checkArgon2id(hash, secret string) error {
	p, salt, key, err := parseArgon2id(hash)
	if err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	got := argonKey([]byte(secret), salt, p.time, p.memory, p.threads, uint32(len(key)))
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return ErrMismatch
	}
	return nil
}

// Hasher is fosite's ClientSecretsHasher (its Compare and Hash methods;
// this package does not import fosite). A client authenticating with a
// secret would otherwise pay a full argon2id run on every token
// request, which lets one busy CI pipeline saturate a small VM. So after one
// successful check it remembers HMAC(processKey, hash‖secret): the store
// still holds only the slow hash, the memory holds a keyed digest that is
// useless outside this process, and a changed secret (a new hash) misses the
// cache. Failures are never cached, so guessing still pays the full price.
// Concurrent checks of the same secret share one run (singleflight), so a
// client that opens 16 connections at once costs one hash, not 16.
type Hasher struct {
	key    []byte
	flight singleflight.Group

	mu    sync.Mutex
	known map[[32]byte]struct{}
}

// secretCacheSize bounds memory; when full the cache is simply reset, which
// costs one slow check per active client.
const secretCacheSize = 4096

// NewHasher returns a Hasher with a fresh process key.
func NewHasher() *Hasher {
	key := make([]byte, 32)
	rand.Read(key) // never fails since Go 1.24: it crashes the program instead
	return &Hasher{key: key, known: map[[32]byte]struct{}{}}
}

func (h *Hasher) digest(hash, secret []byte) [32]byte {
	m := hmac.New(sha256.New, h.key)
	m.Write(hash)
	m.Write([]byte{0})
	m.Write(secret)
	var d [32]byte
	copy(d[:], m.Sum(nil))
	return d
}

// Compare implements fosite.Hasher.
func (h *Hasher) Compare(_ context.Context, hash, secret []byte) error {
	d := h.digest(hash, secret)
	h.mu.Lock()
	_, ok := h.known[d]
	h.mu.Unlock()
	if ok {
		return nil
	}
	_, err, _ := h.flight.Do(string(d[:]), func() (any, error) {
		return nil, Check(string(hash), string(secret))
	})
	if err != nil {
		return err
	}
	h.mu.Lock()
	if len(h.known) >= secretCacheSize {
		clear(h.known)
	}
	h.known[d] = struct{}{}
	h.mu.Unlock()
	return nil
}

// Hash implements fosite.Hasher.
func (h *Hasher) Hash(_ context.Context, secret []byte) ([]byte, error) {
	s, err := Hash(string(secret))
	return []byte(s), err
}
