package storagetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

func trustedIssuer(id string) storage.TrustedIssuer {
	return storage.TrustedIssuer{
		ID:          id,
		Issuer:      "https://" + id + ".example",
		Subject:     "svc-" + id,
		JWKS:        `{"keys":[]}`,
		Scopes:      []string{"read", "write"},
		MaxLifetime: time.Hour,
		Source:      "cli",
		CreatedAt:   created(),
	}
}

func testTrustedIssuers(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a, b := trustedIssuer("ti-a"), trustedIssuer("ti-b")
	b.Subject, b.AnySubject, b.JWKS, b.JWKSURI = "", true, "", "https://ti-b.example/jwks"
	ok(t, s.CreateTrustedIssuer(ctx, a), "create a")
	ok(t, s.CreateTrustedIssuer(ctx, b), "create b")
	dup := trustedIssuer("ti-a")
	dup.Issuer = "https://impostor.example"
	isErr(t, s.CreateTrustedIssuer(ctx, dup), storage.ErrAlreadyExists, "create with a taken id")

	got, err := s.GetTrustedIssuer(ctx, "ti-a")
	ok(t, err, "get a")
	same(t, got, a, "get a")
	all, err := s.ListTrustedIssuers(ctx)
	ok(t, err, "list")
	slices.SortFunc(all, func(x, y storage.TrustedIssuer) int { return strings.Compare(x.ID, y.ID) })
	same(t, all, []storage.TrustedIssuer{a, b}, "list")

	ok(t, s.DeleteTrustedIssuer(ctx, "ti-a"), "delete a")
	_, err = s.GetTrustedIssuer(ctx, "ti-a")
	isErr(t, err, storage.ErrNotFound, "get deleted")
	isErr(t, s.DeleteTrustedIssuer(ctx, "ti-a"), storage.ErrNotFound, "delete twice")
	all, err = s.ListTrustedIssuers(ctx)
	ok(t, err, "list after delete")
	same(t, all, []storage.TrustedIssuer{b}, "list after delete")
}
