package admin

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"slices"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// AddTrustedIssuer records a trusted issuer added by an operator, with a
// random ID. An issuer already trusted for the same subjects is refused:
// which of the two would apply is not obvious.
func (a *Local) AddTrustedIssuer(ctx context.Context, spec clientspec.TrustSpec) (storage.TrustedIssuer, error) {
	spec, err := spec.Validate()
	if err != nil {
		return storage.TrustedIssuer{}, err
	}
	all, err := a.Store.ListTrustedIssuers(ctx)
	if err != nil {
		return storage.TrustedIssuer{}, err
	}
	for _, ti := range all {
		if ti.Issuer == spec.Issuer && clientspec.TrustBinding(ti.Subject, ti.AnySubject) == clientspec.TrustBinding(spec.Subject, spec.AnySubject) {
			return storage.TrustedIssuer{}, fmt.Errorf("%s (id %s): %w", clientspec.DescribeTrust(spec.Issuer, spec.Subject, spec.AnySubject), ti.ID, storage.ErrAlreadyExists)
		}
	}
	ti := spec.Record(rand.Text(), "cli", a.now().UTC())
	if err := a.Store.CreateTrustedIssuer(ctx, ti); err != nil {
		return storage.TrustedIssuer{}, err
	}
	return ti, nil
}

// ListTrustedIssuers lists by issuer, then subject.
func (a *Local) ListTrustedIssuers(ctx context.Context) ([]storage.TrustedIssuer, error) {
	all, err := a.Store.ListTrustedIssuers(ctx)
	slices.SortFunc(all, func(x, y storage.TrustedIssuer) int {
		return cmp.Or(cmp.Compare(x.Issuer, y.Issuer), cmp.Compare(x.Subject, y.Subject), cmp.Compare(x.ID, y.ID))
	})
	return all, err
}

func (a *Local) DeleteTrustedIssuer(ctx context.Context, id string) error {
	return a.Store.DeleteTrustedIssuer(ctx, id)
}
