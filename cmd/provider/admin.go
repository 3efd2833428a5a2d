package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/secret"

	"github.com/spf13/cobra"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
	"github.com/smallsso/provider/storage/postgres"
)

// lockWait is how long an admin command waits for the database lock before
// it concludes a server holds it and uses the admin socket instead.
const lockWait = 250 * time.Millisecond

// openAdmin returns an Admin for the configured database: the database
// itself when no server holds it, else the running server's admin socket.
func openAdmin(ctx context.Context, cfg *fileConfig) (admin.Admin, func(), error) {
	if cfg.usesPostgres() {
		return openDatabaseAdmin(ctx, cfg) // admindb.go: no socket, the database itself
	}
	store, err := bolt.Open(cfg.Storage.Bolt, bolt.Options{Timeout: lockWait})
	if err == nil {
		return directAdmin(cfg, nil, &admin.Local{Store: store})
	}
	if !errors.Is(err, bolt.ErrLocked) {
		return nil, nil, err
	}
	client := admin.Dial(cfg.adminSocket())
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := client.ListClients(pingCtx); err != nil {
		return nil, nil, fmt.Errorf("database %s is locked by another process and its admin socket does not answer (%v)", cfg.Storage.Bolt, err)
	}
	return client, func() {}, nil
}

// directAdmin is the CLI working on the database itself (a bbolt file no
// server holds, or PostgreSQL; pg is nil on bbolt) through local, whose
// Store it closes when done. Only adding a client_secret_jwt client or an
// authenticator app needs the provider secret, so the keys are opened only
// then. A server audits
// the changes made through its socket; here the CLI writes its own to the
// audit log.
func directAdmin(cfg *fileConfig, pg *postgres.Store, local *admin.Local) (admin.Admin, func(), error) {
	loadSecret := func() ([]byte, error) {
		km, err := openKeysOn(cfg, pg, nil)
		if err != nil {
			return nil, err
		}
		return km.Secret("provider")
	}
	local.Sealer = secret.NewSealerFunc(loadSecret)
	// Enrolling an authenticator app seals with the server's keys.
	local.MFAKeys, local.TOTPIssuer = mfa.NewKeys(loadSecret), cfg.totpIssuer()
	aw, file, err := openAuditLog(cfg, os.Stderr, nil)
	if err != nil {
		local.Store.Close()
		return nil, nil, err
	}
	return admin.Audited(local, sinkOrNil(aw), nil), func() {
		local.Store.Close()
		if file != nil {
			file.Close()
		}
	}, nil
}

// describe turns storage sentinels into plain words for the operator.
func describe(err error, what string) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%s does not exist", what)
	case errors.Is(err, storage.ErrAlreadyExists):
		return fmt.Errorf("%s already exists", what)
	default:
		return err
	}
}

// withAdmin loads the config, opens an Admin for it and runs fn.
func withAdmin(cmd *cobra.Command, configPath string, fn func(admin.Admin) error) error {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	a, done, err := openAdmin(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer done()
	return fn(a)
}

// printJSON writes v as indented JSON, for --json listings.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
