package admin

// Every change an operator makes (CLI on the database, or through the
// admin socket) is an audit event naming who made it: the socket peer's
// uid (SO_PEERCRED), or the user running the CLI.

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/userspec"
	"github.com/smallsso/provider/storage"
)

// Audited is a with every change (not the listings) recorded in events,
// successful or not, with its actor: the one in the context (ConnContext
// for the admin socket) or else the user running this process. Nothing
// secret is recorded: a password or client secret never, a user by
// username, a client or trusted issuer by ID (or issuer URL when added).
func Audited(a Admin, events audit.Sink, now func() time.Time) Admin {
	if events == nil {
		return a
	}
	if now == nil {
		now = time.Now
	}
	return &audited{Admin: a, events: events, now: now}
}

type audited struct {
	Admin
	events audit.Sink
	now    func() time.Time
}

func (a *audited) emit(ctx context.Context, op, object string, err error) {
	actor, ok := audit.ActorFrom(ctx)
	if !ok {
		actor = localActor()
	}
	e := audit.Admin(op, object, reasonOf(err))
	e.Time, e.Actor = a.now().UTC(), &actor
	a.events.Record(ctx, e)
}

// reasonOf words a refused change as the admin socket does.
func reasonOf(err error) string {
	var inv *clientspec.InvalidError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, storage.ErrNotFound):
		return "not_found"
	case errors.Is(err, storage.ErrAlreadyExists):
		return "exists"
	case errors.As(err, &inv):
		return "invalid"
	}
	return "error"
}

func (a *audited) AddUser(ctx context.Context, n userspec.User) (storage.User, error) {
	u, err := a.Admin.AddUser(ctx, n)
	a.emit(ctx, audit.OpUserAdd, n.Username, err)
	return u, err
}

func (a *audited) DeleteUser(ctx context.Context, username string) error {
	err := a.Admin.DeleteUser(ctx, username)
	a.emit(ctx, audit.OpUserDelete, username, err)
	return err
}

func (a *audited) SetPassword(ctx context.Context, username, password string) error {
	err := a.Admin.SetPassword(ctx, username, password)
	a.emit(ctx, audit.OpUserPasswd, username, err)
	return err
}

func (a *audited) AddClient(ctx context.Context, spec clientspec.Spec) (storage.Client, string, error) {
	c, secret, err := a.Admin.AddClient(ctx, spec)
	a.emit(ctx, audit.OpClientAdd, spec.ID, err)
	return c, secret, err
}

func (a *audited) DeleteClient(ctx context.Context, id string) error {
	err := a.Admin.DeleteClient(ctx, id)
	a.emit(ctx, audit.OpClientDel, id, err)
	return err
}

func (a *audited) AddTrustedIssuer(ctx context.Context, t clientspec.TrustSpec) (storage.TrustedIssuer, error) {
	ti, err := a.Admin.AddTrustedIssuer(ctx, t)
	a.emit(ctx, audit.OpTrustAdd, t.Issuer, err)
	return ti, err
}

func (a *audited) DeleteTrustedIssuer(ctx context.Context, id string) error {
	err := a.Admin.DeleteTrustedIssuer(ctx, id)
	a.emit(ctx, audit.OpTrustDelete, id, err)
	return err
}

// localActor is the user running this process: the CLI working on the
// database itself.
func localActor() audit.Actor {
	return audit.Actor{Via: "cli", UID: os.Getuid(), User: userName(os.Getuid()), PID: os.Getpid()}
}

// userName is uid's login name, or "" when the system does not know it
// (a DynamicUser, a container without /etc/passwd).
func userName(uid int) string {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return ""
	}
	return u.Username
}

// ConnContext is the admin server's http.Server.ConnContext: it records
// the socket peer's credentials as the actor of the changes made over
// the connection. A peer whose credentials cannot be read is recorded
// with uid -1.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	actor := audit.Actor{Via: "socket", UID: -1}
	if uc, ok := c.(*net.UnixConn); ok {
		if uid, pid, ok := peerCred(uc); ok {
			actor.UID, actor.PID, actor.User = uid, pid, userName(uid)
		}
	}
	return audit.WithActor(ctx, actor)
}

// Backup records the copy, successful or not; the object is empty (the
// whole database).
func (a *audited) Backup(ctx context.Context, w io.Writer) (int64, error) {
	n, err := a.Admin.Backup(ctx, w)
	a.emit(ctx, audit.OpBackup, "", err)
	return n, err
}
