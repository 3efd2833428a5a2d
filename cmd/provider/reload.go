package main

// Reloading the config while serving. SIGHUP, or a change of the config
// file, reads the file again with loadConfig (the same validation as at
// start). An invalid file changes nothing: each problem is logged and the
// running config keeps serving. A valid one is applied live where that is
// cheap and safe, the store through syncConfig's one transaction, the
// pages and trusted proxies through the provider's atomic swaps, and every
// other changed key is named in a warning: it waits for a restart.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/revoke"
	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/templates"
)

// liveConfigKeys are the config keys a reload applies; a change anywhere
// else is logged as needing a restart. A feature that applies its own
// keys in a reload hook (see reloader.onReload) adds them here.
var liveConfigKeys = map[string]bool{
	"clients":         true,
	"users":           true,
	"trusted_issuers": true,
	"ui":              true,
	"trusted_proxies": true,
}

// configSettle is how long the config file must stay quiet before a
// change is read: an editor's save is a burst of events (write, rename,
// chmod), and the file is read once, after the last.
const configSettle = 250 * time.Millisecond

// configSettleMax bounds the wait for quiet, counted from a burst's first
// event.
const configSettleMax = 2 * time.Second

// reloadSignalsKey carries, in tests, the channel serve takes reload
// signals from instead of SIGHUP.
type reloadSignalsKey struct{}

// withReloadSignals makes serve reload on every value sent on c instead
// of on SIGHUP, so tests can reload one in-process server of several.
func withReloadSignals(ctx context.Context, c <-chan os.Signal) context.Context {
	return context.WithValue(ctx, reloadSignalsKey{}, c)
}

// reloadSignals is the channel of reload requests: SIGHUP, unless ctx
// carries another (withReloadSignals). stop ends the SIGHUP delivery.
func reloadSignals(ctx context.Context) (c <-chan os.Signal, stop func()) {
	if c, ok := ctx.Value(reloadSignalsKey{}).(<-chan os.Signal); ok {
		return c, func() {}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// reloadHook applies a part of a new, valid config that the reloader does
// not know about (TLS certificates, say). It runs after each successful
// reload, with the config now served; an error is logged and does not
// undo the reload.
type reloadHook func(ctx context.Context, cfg *fileConfig) error

// reloader applies config changes to a running server. Reloads run one at
// a time, on the goroutine of run.
type reloader struct {
	store  storage.Store
	sealer *secret.Sealer
	p      *provider.Provider
	log    *slog.Logger
	// hooks run after every successful reload, in order.
	hooksMu sync.Mutex
	hooks   []reloadHook
	// audit, if set, records every reload in the audit log: err is nil
	// when the new config serves. Set before start.
	audit func(ctx context.Context, err error)

	// started is the config the server started with: what the keys that
	// need a restart are still set to. cur is the config last applied and
	// raw the file's bytes when last read; only the reloading goroutine
	// touches them.
	started, cur *fileConfig
	raw          []byte
}

func newReloader(cfg *fileConfig, store storage.Store, sealer *secret.Sealer, p *provider.Provider, log *slog.Logger) *reloader {
	raw, _ := os.ReadFile(cfg.path) // a failure only costs a reload of an unchanged file
	return &reloader{store: store, sealer: sealer, p: p, log: log, started: cfg, cur: cfg, raw: raw}
}

// onReload adds a hook run after each successful reload: one line for a
// feature that reloads its own state (serve: rl.onReload(certs.reload)).
// It may be called before or after start.
func (r *reloader) onReload(h reloadHook) {
	r.hooksMu.Lock()
	r.hooks = append(r.hooks, h)
	r.hooksMu.Unlock()
}

// start watches the config file (before it returns, so a change made
// after the server is up is seen) and reloads on every signal and every
// settled change of the file until ctx ends. wg waits for the last reload
// to finish, so the store may then be closed.
func (r *reloader) start(ctx context.Context, signals <-chan os.Signal, wg *sync.WaitGroup) {
	changed, err := watchConfig(ctx, r.cur.path, r.log, wg)
	if err != nil {
		// SIGHUP still works.
		r.log.Warn("not watching the config file for changes; reload with SIGHUP", "path", r.cur.path, "err", err)
	}
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-signals:
				r.reload(ctx, "signal", false)
			case <-changed:
				r.reload(ctx, "file", true)
			}
		}
	})
}

// watchConfig reports settled changes of the config file. It watches the
// file's directory, not the file: editors and configuration tools replace
// a file by renaming another over it, which ends a watch on the file
// itself. The watcher stops when ctx ends (wg waits for it).
func watchConfig(ctx context.Context, path string, log *slog.Logger, wg *sync.WaitGroup) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	dir, name := filepath.Split(path)
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, err
	}
	// A config that is a symbolic link changes when its target does: the
	// target's directory is watched too, and in the link's directory any
	// event may be it (a Kubernetes ConfigMap swaps a "..data" link).
	relevant := func(ev fsnotify.Event) bool { return filepath.Base(ev.Name) == name }
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(path)
		if err == nil && filepath.Dir(target) != filepath.Clean(dir) {
			if err := w.Add(filepath.Dir(target)); err != nil {
				log.Warn("not watching the config file's target", "path", target, "err", err)
			}
		}
		relevant = func(ev fsnotify.Event) bool {
			return filepath.Dir(ev.Name) == filepath.Clean(dir) || ev.Name == target
		}
	}
	out := make(chan struct{}, 1)
	wg.Go(func() {
		defer w.Close()
		settle := time.NewTimer(configSettle)
		settle.Stop()
		defer settle.Stop()
		var first time.Time // of the burst; zero when none is pending
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if !relevant(ev) {
					continue
				}
				// Wait for quiet, but not for ever: events that never stop
				// (a busy file in the same directory, when any name counts)
				// still let the file be read every configSettleMax.
				now := time.Now()
				if first.IsZero() {
					first = now
				}
				settle.Reset(min(configSettle, first.Add(configSettleMax).Sub(now)))
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("watching the config file", "err", err)
			case <-settle.C:
				first = time.Time{}
				select {
				case out <- struct{}{}:
				default: // a reload is already due
				}
			}
		}
	})
	return out, nil
}

// reloadResult is what one reload did, for the log line and the audit.
type reloadResult struct {
	Trigger string // "signal" or "file"
	// Problems are why the new config was refused; empty when applied.
	Problems []string
	// Restart are the changed keys that wait for a restart.
	Restart                        []string
	Clients, Users, TrustedIssuers changeCounts
	UI                             bool // the pages' settings changed
}

type changeCounts struct{ Added, Updated, Removed int }

func (c changeCounts) String() string {
	return fmt.Sprintf("%d added, %d updated, %d removed", c.Added, c.Updated, c.Removed)
}

// reload reads the config file again and applies it. With onlyIfChanged
// (a file event) a file whose bytes did not change is left alone.
func (r *reloader) reload(ctx context.Context, trigger string, onlyIfChanged bool) {
	raw, err := os.ReadFile(r.cur.path)
	if onlyIfChanged && err == nil && bytes.Equal(raw, r.raw) {
		r.log.Debug("config file touched but not changed", "path", r.cur.path)
		return
	}
	if err == nil {
		r.raw = raw
	}
	res := reloadResult{Trigger: trigger}
	next, pages, err := r.prepare()
	if err != nil {
		res.Problems = configProblems(err)
		for _, p := range res.Problems {
			r.log.Error("config reload refused", "path", r.cur.path, "problem", p)
		}
		r.log.Error("config reload refused: the running config stays in force", "path", r.cur.path, "trigger", trigger, "problems", len(res.Problems))
		r.recordAudit(ctx, res)
		return
	}
	// Compared with the start, so a change waiting for a restart is
	// named at every reload until the restart, and not once it is undone.
	res.Restart = restartKeys(r.started, next)
	for _, k := range res.Restart {
		r.log.Warn(k+" changed: restart to apply", "key", k)
	}
	if err := r.apply(ctx, next, pages, &res); err != nil {
		// The store's transaction was rolled back: nothing changed.
		res.Problems = []string{err.Error()}
		r.log.Error("config reload failed: the running config stays in force", "path", r.cur.path, "trigger", trigger, "err", err)
		r.recordAudit(ctx, res)
		return
	}
	r.log.Info("config reloaded", "path", r.cur.path, "trigger", trigger,
		"clients", res.Clients.String(), "users", res.Users.String(), "trusted_issuers", res.TrustedIssuers.String(),
		"ui_changed", res.UI, "restart_needed", strings.Join(res.Restart, ","))
	r.recordAudit(ctx, res)
}

// prepare loads and checks everything a reload needs before it changes
// anything: the config and the pages of ui.templates_dir.
func (r *reloader) prepare() (*fileConfig, *templates.Set, error) {
	next, err := loadConfig(r.cur.path)
	if err != nil {
		return nil, nil, err
	}
	pages, err := templates.Load(next.UI.TemplatesDir)
	if err != nil {
		return nil, nil, fmt.Errorf("ui.templates_dir: %w", err)
	}
	return next, pages, nil
}

// configProblems splits loadConfig's error into its problems, one per key
// path, for one log line each.
func configProblems(err error) []string {
	var list interface{ Problems() []string }
	if errors.As(err, &list) {
		return list.Problems()
	}
	return strings.Split(err.Error(), "\n")
}

// apply makes the server serve next: the store first (one transaction;
// on error nothing changed), then what the provider holds in memory.
func (r *reloader) apply(ctx context.Context, next *fileConfig, pages *templates.Set, res *reloadResult) error {
	synced, err := resolveSecrets(ctx, r.store, next)
	if err != nil {
		return err
	}
	before, err := snapshotStore(ctx, r.store)
	if err != nil {
		return err
	}
	removedUsers, err := syncConfig(ctx, r.store, r.sealer, synced, r.log, time.Now().UTC())
	if err != nil {
		return err
	}
	after, err := snapshotStore(ctx, r.store)
	if err != nil {
		// Applied, only not counted.
		r.log.Warn("config reload: counting the changes", "err", err)
		after = before
	}
	res.Clients, res.TrustedIssuers = diffRecords(before.clients, after.clients), diffRecords(before.trust, after.trust)
	res.Users = diffRecords(before.users, after.users)
	// Until the provider's CORS origins are listed again, a removed
	// client's origin would still be answered.
	r.p.ClientsChanged()

	ui := provider.UI{OrgName: next.UI.OrgName, LogoURL: next.UI.LogoURL, PrimaryColor: next.UI.PrimaryColor, Templates: pages}
	if err := r.p.SetUI(ui); err != nil {
		// loadConfig checked logo and colour with the same rules.
		r.log.Error("config reload: pages", "err", err)
	}
	res.UI = !reflect.DeepEqual(r.cur.UI, next.UI) // the pages of templates_dir are read again regardless
	r.p.SetTrustedProxies(next.trustedProxies())

	r.passwordsChanged(ctx, before.users, after.users)
	endAccess(ctx, r.store, r.p, removedUsers, r.log)
	warnExampleCredentials(next, r.log)
	r.cur = next
	r.hooksMu.Lock()
	hooks := slices.Clone(r.hooks)
	r.hooksMu.Unlock()
	for _, h := range hooks {
		if err := h(ctx, next); err != nil {
			r.log.Error("config reload", "err", err)
		}
	}
	return nil
}

// recordAudit records a reload in the audit log: who cannot be known (a
// signal has no sender), and the problems may quote secrets, so the
// record is only whether the new config serves.
func (r *reloader) recordAudit(ctx context.Context, res reloadResult) {
	if r.audit == nil {
		return
	}
	var err error
	if len(res.Problems) > 0 {
		err = errors.New("refused")
	}
	r.audit(ctx, err)
}

// passwordsChanged treats a password changed in the config as one changed
// with `provider users passwd`: whoever knew the old one loses the
// sessions and refresh tokens it gave them.
func (r *reloader) passwordsChanged(ctx context.Context, before, after map[string]any) {
	for id, v := range after {
		u, old := v.(storage.User), before[id]
		if old == nil || old.(storage.User).PasswordHash == u.PasswordHash {
			continue
		}
		ended, err := revoke.UserAccess(ctx, r.store, u.ID, "")
		if err != nil {
			r.log.Error("config reload: ending the sessions of a user whose password changed", "user", u.Username, "err", err)
		}
		r.p.SessionsEnded(ctx, ended)
		r.p.PasswordChanged(u.Username)
		r.log.Info("config reload: password changed; sessions and refresh tokens ended", "user", u.Username, "sessions", len(ended))
	}
}

// resolveSecrets returns cfg with its clients' secrets and users'
// passwords replaced by their hashes: the stored hash when it matches
// (so a client's secret memo stays warm), else a new one. Each is an
// argon2id run, done here rather than inside syncConfig's transaction,
// which holds the store's write lock and so every token issuance.
func resolveSecrets(ctx context.Context, store storage.Store, cfg *fileConfig) (*fileConfig, error) {
	out := *cfg
	out.Clients = slices.Clone(cfg.Clients)
	for i := range out.Clients {
		c := &out.Clients[i]
		if c.Secret == "" || c.TokenEndpointAuthMethod == "client_secret_jwt" {
			continue // sealed, not hashed: cheap
		}
		old, err := store.GetClient(ctx, c.ID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		hash, err := c.ResolveSecretHash(old.SecretHash)
		if err != nil {
			return nil, err
		}
		c.SecretHash, c.Secret = hash, ""
	}
	out.Users = slices.Clone(cfg.Users)
	for i := range out.Users {
		u := &out.Users[i]
		if u.Password == "" {
			continue
		}
		old, err := store.GetUserByUsername(ctx, u.Username)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		hash, err := u.ResolveHash(old.PasswordHash)
		if err != nil {
			return nil, err
		}
		u.PasswordHash, u.Password = hash, ""
	}
	return &out, nil
}

// storeSnapshot is what a reload may change in the store, by ID.
type storeSnapshot struct {
	clients, users, trust map[string]any
}

func snapshotStore(ctx context.Context, store storage.Store) (storeSnapshot, error) {
	var s storeSnapshot
	cs, err := store.ListClients(ctx)
	if err != nil {
		return s, err
	}
	us, err := store.ListUsers(ctx)
	if err != nil {
		return s, err
	}
	ts, err := store.ListTrustedIssuers(ctx)
	if err != nil {
		return s, err
	}
	s.clients, s.users, s.trust = map[string]any{}, map[string]any{}, map[string]any{}
	for _, c := range cs {
		c.UpdatedAt = time.Time{} // a sync stamps every declared client
		s.clients[c.ID] = c
	}
	for _, u := range us {
		u.UpdatedAt = time.Time{}
		s.users[u.ID] = u
	}
	for _, t := range ts {
		s.trust[t.ID] = t
	}
	return s, nil
}

func diffRecords(before, after map[string]any) changeCounts {
	var n changeCounts
	for id, a := range after {
		b, ok := before[id]
		switch {
		case !ok:
			n.Added++
		case !reflect.DeepEqual(a, b):
			n.Updated++
		}
	}
	for id := range before {
		if _, ok := after[id]; !ok {
			n.Removed++
		}
	}
	return n
}

// restartKeys are the key paths whose value differs between old and next
// and that a reload does not apply (not in liveConfigKeys).
func restartKeys(old, next *fileConfig) []string {
	var keys []string
	diffKeys("", reflect.ValueOf(old).Elem(), reflect.ValueOf(next).Elem(), &keys)
	return keys
}

func diffKeys(prefix string, a, b reflect.Value, keys *[]string) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		key := prefix
		if !strings.Contains(opts, "inline") {
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			key = strings.TrimPrefix(prefix+"."+name, ".")
		}
		if liveConfigKeys[key] {
			continue
		}
		fa, fb := a.Field(i), b.Field(i)
		if f.Type.Kind() == reflect.Struct && hasYAMLKeys(f.Type) {
			diffKeys(key, fa, fb, keys)
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			*keys = append(*keys, key)
		}
	}
}

// hasYAMLKeys reports whether a struct is a block of keys (walked into)
// rather than one value such as a time.Time.
func hasYAMLKeys(t reflect.Type) bool {
	for i := range t.NumField() {
		if _, ok := t.Field(i).Tag.Lookup("yaml"); ok {
			return true
		}
	}
	return false
}
