package postgres

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/smallsso/provider/storage"
)

// A lost race is ErrConflict, a dead connection ErrUnavailable, anything
// else neither.
func TestBudgetsErr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err                   error
		conflict, unavailable bool
	}{
		{&pgconn.PgError{Code: "40001", Message: "could not serialize access"}, true, false},
		{fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}), true, false},
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, false, true},
		{&pgconn.PgError{Code: "08006", Message: "connection failure"}, false, true},
		{errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"), false, true},
		{&pgconn.PgError{Code: "22021", Message: "invalid byte sequence"}, false, false},
	} {
		got := budgetsErr("budgets", tc.err)
		if errors.Is(got, storage.ErrConflict) != tc.conflict || errors.Is(got, storage.ErrUnavailable) != tc.unavailable {
			t.Errorf("%v became %v", tc.err, got)
		}
		if !strings.HasPrefix(got.Error(), "postgres: budgets: ") {
			t.Errorf("%v worded as %q", tc.err, got)
		}
	}
}
