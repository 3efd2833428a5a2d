package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smallsso/provider/storage/postgres/pgtest"
)

// TestQueriesUseIndexes checks the plans of the statements that must not
// read the whole table: the lookups by request ID and by subject, and
// each janitor batch. Plans are generic (what a prepared statement gets
// after a few runs) and sequential scans are priced out, so the test
// fails exactly when no index can serve the statement.
func TestQueriesUseIndexes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.Shared(t).NewDatabase(t)
	s, err := Open(ctx, Options{DSN: dsn, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	type check struct {
		name, sql, index string
		args             string
	}
	checks := []check{
		{"RevokeByRequestID", sqlRevokeByRequestID, "tokens_request_id", "('refresh', 'r1')"},
		{"ListSubjectTokens", sqlListSubjectTokens, "tokens_subject", "('u-alice', 'refresh')"},
		{"RevokeSubjectClient", sqlRevokeSubjectClient, "tokens_subject", "('u-alice', 'c-app')"},
		{"ListUserSessions", `SELECT data FROM browser_sessions WHERE user_id = $1`, "browser_sessions_user_id", "('u-alice')"},
	}
	for _, step := range gcSteps {
		index := map[string]string{
			"tokens": "tokens_expires_at", "refresh answers": "tokens_replay_until", "browser sessions": "browser_sessions_expires_at",
			"consents": "consents_expires_at", "jtis": "jtis_expires_at",
		}[step.what]
		checks = append(checks, check{"GarbageCollect " + step.what, step.sql, index, "('" + time.Now().UTC().Format(time.RFC3339) + "', 500)"})
	}
	for i, c := range checks {
		name := "q" + string(rune('a'+i))
		if _, err := conn.Exec(ctx, "PREPARE "+name+" AS "+c.sql); err != nil {
			t.Fatalf("%s: prepare: %v", c.name, err)
		}
		rows, err := conn.Query(ctx, "EXPLAIN EXECUTE "+name+c.args)
		if err != nil {
			t.Fatalf("%s: explain: %v", c.name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: explain: %v", c.name, err)
		}
		plan := strings.Join(lines, "\n")
		if !strings.Contains(plan, c.index) || strings.Contains(plan, "Seq Scan") {
			t.Errorf("%s does not use index %s:\n%s", c.name, c.index, plan)
		}
	}
}
