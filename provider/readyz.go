package provider

// Readiness (/readyz) and what a request sees when the database cannot
// take writes. /healthz says the process answers; /readyz says it can do
// its work: the database takes a write (storage.Store.CheckWritable, a
// real write, at most one a second whatever the number of probes) and a
// signing key is loaded for every algorithm. The answer names the check
// that failed and nothing more; the cause goes to the log, once when
// readiness is lost and once when it returns.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// retryUnavailable is the Retry-After of a 503 caused by the database.
const retryUnavailable = 10 * time.Second

// readyState remembers the last readiness answer, to log its changes.
type readyState struct {
	mu     sync.Mutex
	failed string // the failed checks of the last answer, "" when ready
}

// readyProbeTimeout bounds the database probe of /readyz.
const readyProbeTimeout = 5 * time.Second

// readyAnswer is the body of /readyz.
type readyAnswer struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func (p *Provider) handleReady(w http.ResponseWriter, r *http.Request) {
	ans := readyAnswer{Status: "ok", Checks: map[string]string{"database": "ok", "signing_keys": "ok"}}
	var causes []any
	// The probe is not the prober's: one that hangs up must not make the
	// database look unwritable (and flap the log), nor cancel the write
	// that concurrent probes wait for. A disk that hangs fails it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), readyProbeTimeout)
	defer cancel()
	if err := p.store.CheckWritable(ctx); err != nil {
		ans.Checks["database"] = "not writable"
		causes = append(causes, slog.String("database", err.Error()))
	}
	for _, alg := range clientspec.SigningAlgorithms {
		if _, err := p.keys.Active(alg); err != nil {
			ans.Checks["signing_keys"] = "missing"
			causes = append(causes, slog.String("signing_keys", err.Error()))
			break
		}
	}
	failed := ""
	for _, name := range []string{"database", "signing_keys"} {
		if ans.Checks[name] != "ok" {
			failed += " " + name
		}
	}
	p.noteReadiness(r, failed, causes)
	if failed != "" {
		ans.Status = "unavailable"
		w.Header().Set("Retry-After", strconv.Itoa(int(retryUnavailable.Seconds())))
		writeJSON(w, http.StatusServiceUnavailable, ans)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// noteReadiness logs a change of readiness.
func (p *Provider) noteReadiness(r *http.Request, failed string, causes []any) {
	p.ready.mu.Lock()
	changed := p.ready.failed != failed
	p.ready.failed = failed
	p.ready.mu.Unlock()
	switch {
	case !changed:
	case failed != "":
		p.log.ErrorContext(r.Context(), "not ready", causes...)
	default:
		p.log.InfoContext(r.Context(), "ready again")
	}
}

// storageUnavailable turns a write the database could not make durable
// (a full disk, a read-only file system, a database that is down), or
// one that lost a race with another replica's (storage.ErrConflict),
// into RFC 6749's temporarily_unavailable, 503 with Retry-After, for a
// protocol endpoint: the client may retry, and nothing of the request
// was kept. Other errors are returned as they are.
func storageUnavailable(w http.ResponseWriter, err error) error {
	conflict := errors.Is(err, storage.ErrConflict)
	if !errors.Is(err, storage.ErrUnavailable) && !conflict {
		return err
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(retryUnavailable.Seconds())))
	// Wrap the storage error itself, below fosite's own wrappers, so the
	// log's cause is the disk's complaint rather than "server_error".
	cause := err
	for e := err; e != nil; e = errors.Unwrap(e) {
		var rfc *fosite.RFC6749Error
		if !errors.As(e, &rfc) {
			cause = e
			break
		}
	}
	if conflict {
		// Lost a race with a concurrent writer (another replica): nothing
		// was kept, and the same request may succeed at once.
		return fosite.ErrTemporarilyUnavailable.WithHint("The request met a concurrent one. Please try again.").WithWrap(cause)
	}
	return fosite.ErrTemporarilyUnavailable.WithHint("The server cannot store anything right now. Please try again later.").WithWrap(cause)
}

// storageDown reports whether err is the store failing (unreachable, or a
// lost race with another replica) rather than anything about the request.
func storageDown(err error) bool {
	return errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrConflict)
}

// writeStorageDown answers a bearer-token endpoint whose store failed:
// 503 with Retry-After, so a client retries rather than drops its token.
func writeStorageDown(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retryUnavailable.Seconds())))
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable", "error_description": "The server cannot reach its storage right now. Please try again later."})
}

// writeUnavailable answers err itself when it is
// temporarily_unavailable (fosite's revocation handler makes every
// storage failure one), and reports whether it did: fosite answers
// every revocation error but two with 200, which would tell the client a
// token is revoked that is not.
func writeUnavailable(w http.ResponseWriter, err error) bool {
	if !errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		return false
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	w.Header().Set("Retry-After", strconv.Itoa(int(retryUnavailable.Seconds())))
	writeJSON(w, rfc.CodeField, map[string]string{"error": rfc.ErrorField, "error_description": rfc.GetDescription()})
	return true
}
