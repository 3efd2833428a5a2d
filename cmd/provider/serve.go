package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"time"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/revoke"
	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"

	"github.com/spf13/cobra"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/templates"
)

// gcInterval is how often expired records are collected.
const gcInterval = 10 * time.Minute

func newServeCmd(e *env) *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the provider",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, e, nil)
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	return c
}

// serve runs until ctx ends. ready, if set, receives the listening address
// (tests use it to find a random port).
func serve(ctx context.Context, cfg *fileConfig, e *env, ready chan<- string) error {
	log := newLogger(cfg, e)
	// SIGHUP is caught from the start: its default action ends the process.
	hup, stopHUP := reloadSignals(ctx)
	defer stopHUP()

	// A page of ui.templates_dir that does not parse stops the start, with
	// the file's name in the error, before anything is opened or created.
	pages, err := templates.Load(cfg.UI.TemplatesDir)
	if err != nil {
		return err
	}

	// The bbolt file, or PostgreSQL brought up to date (storagepg.go);
	// pg is nil on bbolt.
	store, pg, err := openServeStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	obs, err := openObserver(cfg, e, log)
	if err != nil {
		return err
	}
	defer obs.shutdown(context.WithoutCancel(ctx))

	km, err := openKeysOn(cfg, pg, log)
	if err != nil {
		return err
	}
	providerSecret, err := km.Secret("provider")
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	sealer := secret.NewSealer(providerSecret)
	removedUsers, err := syncConfig(ctx, store, sealer, cfg, log, now)
	if err != nil {
		return err
	}
	pcfg := cfg.providerConfig()
	p, err := provider.New(pcfg, provider.Deps{
		Store: store, Keys: km, Templates: pages, Logger: log, Secret: providerSecret,
		Events: obs.events, Metrics: obs.metrics, Budgets: budgetsOf(store),
	})
	if err != nil {
		return err
	}
	endAccess(ctx, store, p, removedUsers, log)

	// The start's argon2id runs (config passwords and secrets) leave memory
	// the runtime would return to the system only minutes later.
	debug.FreeOSMemory()

	ts, err := newTLSServing(cfg, log) // nil without a tls: block
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	ln = ts.listener(ln)
	// The admin socket exists only beside a bbolt file: on PostgreSQL the
	// CLI works on the database itself (admindb.go).
	var adminLn net.Listener
	if pg == nil {
		if adminLn, err = admin.Listen(cfg.adminSocket()); err != nil {
			ln.Close()
			return err
		}
	}
	redirectLn, err := ts.listenRedirect()
	if err != nil {
		ln.Close()
		if adminLn != nil {
			adminLn.Close()
		}
		return err
	}
	srv := newHTTPServer(cfg, ts.handler(p.Handler()), log) // limits: timeouts, header bytes, concurrent requests
	adminSrv := &http.Server{Handler: admin.Handler(admin.Audited(&admin.Local{Store: store, Sealer: sealer, SessionsEnded: p.SessionsEnded, PasswordChanged: p.PasswordChanged,
		ClientsChanged: p.ClientsChanged, MFAKeys: mfa.NewKeys(func() ([]byte, error) { return providerSecret, nil }), TOTPIssuer: cfg.totpIssuer()}, obs.events, nil)), ReadHeaderTimeout: 10 * time.Second,
		ConnContext: admin.ConnContext}

	errc := make(chan error, 4) // the server, the admin socket, TLS redirect, metrics
	go func() { errc <- srv.Serve(ln) }()
	servers := []*http.Server{srv}
	if adminLn != nil {
		go func() { errc <- adminSrv.Serve(adminLn) }()
		servers = append(servers, adminSrv)
	}
	ts.serveRedirect(redirectLn, errc)
	// The background work ends, and is waited for, before the store closes.
	bgCtx, stopBG := context.WithCancel(ctx)
	var bg sync.WaitGroup
	obs.start(errc, log)
	bg.Go(func() { collectGarbage(bgCtx, store, log, obs.janitor) })
	rl := newReloader(cfg, store, sealer, p, log)
	rl.audit = obs.configReloaded
	rl.start(bgCtx, hup, &bg)
	// SIGHUP also re-reads the certificate files at once.
	rl.onReload(func(context.Context, *fileConfig) error { return ts.Reload() })
	// ... and reopens the audit log, for a logrotate without copytruncate.
	rl.onReload(func(context.Context, *fileConfig) error { return obs.reopenAuditLog() })
	bg.Go(func() { rotateKeysOnSchedule(bgCtx, km, time.Duration(cfg.Keys.RotateEvery), log, obs.events) })

	where := []any{"admin_socket", cfg.adminSocket()}
	if pg != nil {
		where = []any{"storage", cfg.describeStorage()} // never the DSN
	}
	log.Info("listening", append([]any{"addr", ln.Addr().String(), "scheme", ts.scheme(), "issuer", cfg.Issuer}, where...)...)
	warnExampleCredentials(cfg, log)
	warnReadableSecrets(cfg.path, log)
	if cfg.Registration.Enabled {
		// Open registration lets anyone create clients; say so once.
		log.Info("dynamic client registration enabled", "endpoint", cfg.Issuer+"/register", "open", cfg.Registration.InitialAccessToken == "")
	}
	if len(cfg.Clients) > 0 {
		fmt.Fprintf(e.stderr, "\nTry it: open %s\n\n", tryURL(cfg))
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case <-ctx.Done():
	case err = <-errc:
		log.Error("server stopped", "err", err)
	}
	stopBG()
	drain(ctx, log, append(servers, ts.servers()...)...)
	bg.Wait()
	log.Info("stopped")
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type gcStore interface {
	GarbageCollect(ctx context.Context, now time.Time) (int, error)
}

// collectGarbage runs the janitor until ctx ends; record (the metrics)
// hears of every run.
func collectGarbage(ctx context.Context, store gcStore, log *slog.Logger, record func(removed int, err error)) {
	t := time.NewTicker(gcInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// The store removes expired records in small transactions,
			// so a large backlog does not hold up issuance; on shutdown
			// it stops between two of them.
			n, err := store.GarbageCollect(ctx, time.Now())
			if ctx.Err() == nil {
				record(n, err)
			}
			switch {
			case err != nil && ctx.Err() != nil:
				return
			case err != nil:
				log.Error("garbage collection", "removed", n, "err", err)
			case n > 0:
				log.Info("garbage collection", "removed", n)
			}
		}
	}
}

func newLogger(cfg *fileConfig, e *env) *slog.Logger {
	level := slog.LevelInfo
	level.UnmarshalText([]byte(cfg.Log.Level)) // validated in loadConfig
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// The example credentials documented in README.md and config.example.yaml.
const (
	exampleClientSecret = "example-secret"
	exampleUserPassword = "alice-example-password"
)

// warnExampleCredentials shouts when the documented example secrets are in
// use on an issuer other people can reach.
func warnExampleCredentials(cfg *fileConfig, log *slog.Logger) {
	u, _ := url.Parse(cfg.Issuer)
	if u == nil || clientspec.IsLoopbackHost(u.Hostname()) {
		return
	}
	for _, c := range cfg.Clients {
		if c.Secret == exampleClientSecret {
			log.Warn("EXAMPLE CREDENTIALS IN USE on a public issuer: client secret is the documented example; change it", "client_id", c.ID)
		}
	}
	for _, us := range cfg.Users {
		if us.Password == exampleUserPassword || (us.PasswordHash != "" && secret.Check(us.PasswordHash, exampleUserPassword) == nil) {
			log.Warn("EXAMPLE CREDENTIALS IN USE on a public issuer: user password is the documented example; change it", "user", us.Username)
		}
	}
}

// tryURL is an authorization request for the first configured client, so
// a newcomer can sign in straight away.
func tryURL(cfg *fileConfig) string {
	c := cfg.Clients[0]
	q := url.Values{
		"client_id":     {c.ID},
		"response_type": {"code"},
		"scope":         {"openid profile email"},
		"state":         {"try-it-" + fmt.Sprint(time.Now().Unix())},
	}
	if len(c.RedirectURIs) > 0 {
		q.Set("redirect_uri", c.RedirectURIs[0])
	}
	return cfg.Issuer + "/authorize?" + q.Encode()
}

// syncConfig makes the store match the config's clients, users and
// trusted issuers in one transaction: one commit at start instead of one
// per declared entry, and a config that fails half-way changes nothing.
// It returns the users it deleted because the config no longer declares
// them: their sessions and tokens are for the caller to end (endAccess).
func syncConfig(ctx context.Context, store storage.Store, sealer *secret.Sealer, cfg *fileConfig, log *slog.Logger, now time.Time) ([]storage.User, error) {
	// Replicas starting together sync the same file into one database at
	// once: the one that loses a race on a new record (a unique name
	// another replica's transaction just took, or a conflict) rolls back
	// and syncs again, and then finds the record and updates it.
	for attempt := 1; ; attempt++ {
		removed, err := syncConfigOnce(ctx, store, sealer, cfg, log, now)
		if attempt < 5 && (errors.Is(err, storage.ErrAlreadyExists) || errors.Is(err, storage.ErrConflict)) {
			continue
		}
		return removed, err
	}
}

func syncConfigOnce(ctx context.Context, store storage.Store, sealer *secret.Sealer, cfg *fileConfig, log *slog.Logger, now time.Time) ([]storage.User, error) {
	txCtx, err := store.BeginTx(ctx)
	if err != nil {
		return nil, err
	}
	defer store.RollbackTx(txCtx) // a no-op once committed
	var removed []storage.User
	err = admin.SyncClients(txCtx, store, sealer, cfg.Clients, log, now)
	if err == nil {
		removed, err = admin.SyncUsers(txCtx, store, cfg.Users, now)
	}
	if err == nil {
		err = admin.SyncTrustedIssuers(txCtx, store, cfg.TrustedIssuers, log, now)
	}
	if err != nil {
		_ = store.RollbackTx(txCtx)
		return nil, err
	}
	return removed, store.CommitTx(txCtx)
}

// endAccess ends the browser sessions and tokens of users the config no
// longer declares (deleted by syncConfig), and tells their applications
// (back-channel logout): taking someone out of the file offboards them.
func endAccess(ctx context.Context, store storage.Store, p *provider.Provider, removed []storage.User, log *slog.Logger) {
	for _, u := range removed {
		ended, err := revoke.UserAccess(ctx, store, u.ID, "")
		if err != nil {
			log.Error("ending the sessions of a user removed from the config", "user", u.Username, "err", err)
		}
		p.SessionsEnded(ctx, ended)
		log.Info("removed user no longer in config; sessions and tokens ended", "user", u.Username, "sessions", len(ended))
	}
}
