package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// SyncTrustedIssuers makes the store match the trusted issuers declared in
// the config, as SyncClients does for clients: each is created or
// replaced (under an ID derived from issuer and subject), and one that came
// from the config earlier but is no longer declared is deleted. Entries
// added with the CLI are left alone. jwks_file must already be read
// (clientspec.TrustSpec.ReadJWKSFile).
func SyncTrustedIssuers(ctx context.Context, store storage.Store, specs []clientspec.TrustSpec, log *slog.Logger, now time.Time) error {
	declared := map[string]bool{}
	for _, spec := range specs {
		spec, err := spec.Validate()
		if err != nil {
			return fmt.Errorf("trusted issuer %q: %w", spec.Issuer, err)
		}
		id := clientspec.ConfigTrustID(spec)
		if declared[id] {
			return fmt.Errorf("%s is declared twice", clientspec.DescribeTrust(spec.Issuer, spec.Subject, spec.AnySubject))
		}
		declared[id] = true
		want := spec.Record(id, "config", now)
		old, err := store.GetTrustedIssuer(ctx, id)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return fmt.Errorf("trusted issuer %q: %w", spec.Issuer, err)
		default:
			want.CreatedAt = old.CreatedAt
			if sameTrustRecord(old, want) {
				continue
			}
			// There is no update: the entry is replaced. Sync runs before
			// the server answers, so no request sees it missing.
			if err := store.DeleteTrustedIssuer(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("trusted issuer %q: %w", spec.Issuer, err)
			}
		}
		if err := store.CreateTrustedIssuer(ctx, want); err != nil {
			return fmt.Errorf("trusted issuer %q: %w", spec.Issuer, err)
		}
	}
	all, err := store.ListTrustedIssuers(ctx)
	if err != nil {
		return err
	}
	for _, ti := range all {
		switch {
		case ti.Source == "config" && !declared[ti.ID]:
			if err := store.DeleteTrustedIssuer(ctx, ti.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("remove trusted issuer %q: %w", ti.Issuer, err)
			}
			if log != nil {
				log.Info("removed trusted issuer no longer in config", "issuer", ti.Issuer, "id", ti.ID)
			}
		case ti.Source != "config" && log != nil:
			for _, spec := range specs {
				if spec.Issuer == ti.Issuer && clientspec.TrustBinding(spec.Subject, spec.AnySubject) == clientspec.TrustBinding(ti.Subject, ti.AnySubject) {
					log.Warn("trusted issuer is declared in the config and was also added with the CLI; the config entry applies",
						"issuer", ti.Issuer, "id", ti.ID)
				}
			}
		}
	}
	return nil
}

func sameTrustRecord(a, b storage.TrustedIssuer) bool {
	return a.Issuer == b.Issuer && a.Subject == b.Subject && a.AnySubject == b.AnySubject &&
		a.JWKS == b.JWKS && a.JWKSURI == b.JWKSURI && slices.Equal(a.Scopes, b.Scopes) &&
		a.MaxLifetime == b.MaxLifetime && a.Source == b.Source && a.CreatedAt.Equal(b.CreatedAt)
}
