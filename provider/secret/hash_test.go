package secret

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashSecretRoundTrip(t *testing.T) {
	t.Parallel()
	h, err := Hash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not argon2id in PHC format", h)
	}
	if err := ValidHash(h); err != nil {
		t.Fatal(err)
	}
	if Check(h, "s3cret") != nil {
		t.Error("the right secret does not match")
	}
	if Check(h, "s3cret ") == nil || Check(h, "") == nil {
		t.Error("a wrong secret matches")
	}
	other, _ := Hash("s3cret")
	if other == h {
		t.Error("two hashes of one secret are equal: no salt")
	}
}

func TestCheckSecretAcceptsBcryptAndRefusesJunk(t *testing.T) {
	t.Parallel()
	b, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if Check(string(b), "pw") != nil || Check(string(b), "px") == nil {
		t.Error("bcrypt hashes are not checked correctly")
	}
	for _, junk := range []string{"", "plain", "$argon2id$v=19$m=0,t=0,p=0$AA$AA", "$argon2id$v=19$bad", "$2y$10$short"} {
		if Check(junk, "x") == nil {
			t.Errorf("junk hash %q matched", junk)
		}
		if ValidHash(junk) == nil {
			t.Errorf("ValidHash accepted %q", junk)
		}
	}
}

func TestSecretHasherCachesOnlySuccess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := NewHasher()
	hash, _ := Hash("right")
	if h.Compare(ctx, []byte(hash), []byte("wrong")) == nil {
		t.Fatal("wrong secret accepted")
	}
	if len(h.known) != 0 {
		t.Fatal("a failed check was cached")
	}
	if h.Compare(ctx, []byte(hash), []byte("right")) != nil || len(h.known) != 1 {
		t.Fatal("right secret not accepted and cached")
	}
	if h.Compare(ctx, []byte(hash), []byte("right")) != nil {
		t.Fatal("cached secret not accepted")
	}
	if h.Compare(ctx, []byte(hash), []byte("wrong")) == nil {
		t.Fatal("wrong secret accepted after a cached success")
	}
	// A rotated secret has a new hash: the old secret must not match it.
	rotated, _ := Hash("new")
	if h.Compare(ctx, []byte(rotated), []byte("right")) == nil {
		t.Fatal("old secret accepted against the new hash")
	}
}

// BenchmarkClientSecretCheck compares what a token request pays for client
// authentication with and without the verification cache.
func BenchmarkClientSecretCheck(b *testing.B) {
	ctx := context.Background()
	hash, _ := Hash("svc-secret")
	b.Run("argon2id", func(b *testing.B) {
		for b.Loop() {
			if Check(hash, "svc-secret") != nil {
				b.Fatal("mismatch")
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		h := NewHasher()
		for b.Loop() {
			if h.Compare(ctx, []byte(hash), []byte("svc-secret")) != nil {
				b.Fatal("mismatch")
			}
		}
	})
}

// UnknownAccountHash must cost what checking a real hash costs: the same
// algorithm and parameters as Hash writes today.
func TestUnknownAccountHashMatchesHashParameters(t *testing.T) {
	t.Parallel()
	h, err := Hash("any password")
	if err != nil {
		t.Fatal(err)
	}
	params := func(h string) string { return strings.Join(strings.Split(h, "$")[:4], "$") }
	if got, want := params(UnknownAccountHash), params(h); got != want {
		t.Errorf("UnknownAccountHash has %s, Hash writes %s: regenerate it", got, want)
	}
	if err := Check(UnknownAccountHash, "any password"); !errors.Is(err, ErrMismatch) {
		t.Errorf("check against UnknownAccountHash: %v, want a mismatch", err)
	}
}
