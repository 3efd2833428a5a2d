package main

import (
	"context"
	"fmt"
	"os"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/admin"
)

// openDatabaseAdmin is openAdmin on PostgreSQL: there is no admin socket
// (the servers share the database, none owns it), so the CLI works on the
// database directly, with the same validation (admin.Local) and the same
// audit entries as on a bbolt file no server holds. Running servers see
// the change through the database. A database behind this binary is
// refused: run `provider migrate` first.
func openDatabaseAdmin(ctx context.Context, cfg *fileConfig) (admin.Admin, func(), error) {
	pg, store, err := openPostgres(ctx, cfg, false, nil)
	if err != nil {
		return nil, nil, err
	}
	return directAdmin(cfg, pg, &admin.Local{Store: store, PasswordChanged: func(username string) {
		// The places the account signed in from lose their exemption
		// from its sign-in budget, on every replica, as when a server
		// changes a password.
		if err := provider.ForgetKnownSources(context.WithoutCancel(ctx), pg, username); err != nil {
			fmt.Fprintf(os.Stderr, "provider: warning: the sign-in throttle still exempts %s's known places: %v\n", username, err)
		}
	}})
}
