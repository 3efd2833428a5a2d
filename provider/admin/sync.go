package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/provider/userspec"

	"github.com/smallsso/provider/storage"
)

// SyncClients makes the store match the clients declared in the config:
// each is created or updated, and a client that came from the config
// earlier but is no longer declared is deleted. Clients added with the CLI
// are left alone unless the config declares the same ID, in which case the
// config wins (and says so). seal encrypts the secrets of client_secret_jwt
// clients.
func SyncClients(ctx context.Context, store storage.Store, seal *secret.Sealer, specs []clientspec.Spec, log *slog.Logger, now time.Time) error {
	declared := map[string]bool{}
	for _, spec := range specs {
		spec, err := spec.Validate()
		if err != nil {
			return fmt.Errorf("client %q: %w", spec.ID, err)
		}
		declared[spec.ID] = true
		old, err := store.GetClient(ctx, spec.ID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			c, err := spec.Record(storage.Client{}, seal)
			if err != nil {
				return err
			}
			c.Source, c.CreatedAt, c.UpdatedAt = "config", now, now
			if err := store.CreateClient(ctx, c); err != nil {
				return fmt.Errorf("client %q: %w", spec.ID, err)
			}
		case err != nil:
			return fmt.Errorf("client %q: %w", spec.ID, err)
		default:
			if old.Source != "config" && log != nil {
				log.Warn("config client replaces a client added with the CLI", "client_id", spec.ID)
			}
			c, err := spec.Record(old, seal)
			if err != nil {
				return err
			}
			err = store.UpdateClient(ctx, spec.ID, func(cur storage.Client) (storage.Client, error) {
				c.Source, c.CreatedAt, c.UpdatedAt = "config", cur.CreatedAt, now
				return c, nil
			})
			if err != nil {
				return fmt.Errorf("client %q: %w", spec.ID, err)
			}
		}
	}
	all, err := store.ListClients(ctx)
	if err != nil {
		return err
	}
	for _, c := range all {
		if c.Source == "config" && !declared[c.ID] {
			if err := store.DeleteClient(ctx, c.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("remove client %q: %w", c.ID, err)
			}
			if log != nil {
				log.Info("removed client no longer in config", "client_id", c.ID)
			}
		}
	}
	return nil
}

// SyncUsers makes the store match the users declared in the config: each
// missing one is created, and the profile and password of those that
// exist are updated (their `sub` never changes); a user that came from the
// config earlier but is no longer declared is deleted, as clients are.
// Users added with the CLI are left alone unless the config declares the
// same username, in which case the config wins. It returns the users it
// deleted, whose sessions and tokens the caller ends.
func SyncUsers(ctx context.Context, store storage.Store, specs []userspec.User, now time.Time) (removed []storage.User, err error) {
	declared := map[string]bool{}
	for _, spec := range specs {
		name := spec.Username
		spec, err := spec.Validate()
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
		declared[spec.Username] = true
		old, err := store.GetUserByUsername(ctx, spec.Username)
		exists := err == nil
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("user %q: %w", spec.Username, err)
		}
		hash, err := spec.ResolveHash(old.PasswordHash)
		if err != nil {
			return nil, err
		}
		if !exists {
			u := spec.Apply(storage.User{ID: newSubject(), CreatedAt: now}, hash, now)
			u.Source = "config"
			err = store.CreateUser(ctx, u)
		} else {
			err = store.UpdateUser(ctx, old.ID, func(u storage.User) (storage.User, error) {
				u = spec.Apply(u, hash, now)
				u.Source = "config"
				return u, nil
			})
		}
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", spec.Username, err)
		}
	}
	all, err := store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range all {
		if u.Source != "config" || declared[u.Username] {
			continue
		}
		if err := store.DeleteUser(ctx, u.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("remove user %q: %w", u.Username, err)
		}
		removed = append(removed, u)
	}
	return removed, nil
}
