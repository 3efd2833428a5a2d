package postgres_test

import (
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/budgetstest"
	"github.com/smallsso/provider/storage/postgres"
)

// Two stores on one database are two replicas.
func openTwo(t *testing.T) (*postgres.Store, *postgres.Store) {
	t.Helper()
	a, dsn := openFresh(t)
	t.Cleanup(func() { a.Close() })
	b, err := postgres.Open(t.Context(), postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

func TestBudgetsConformance(t *testing.T) {
	t.Parallel()
	budgetstest.Run(t, func(t *testing.T) (storage.Budgets, storage.Budgets) { return openTwo(t) })
}

// The janitor removes expired rows, in batches, and only those; a
// collected row is missing to the next update, which writes it again.
func TestBudgetsCollect(t *testing.T) {
	t.Parallel()
	a, b := openTwo(t)
	ctx := t.Context()
	t0 := time.Unix(1_800_000_000, 0)
	names := make([]string, 1200)
	for i := range names {
		names[i] = "n" + string(rune('a'+i%26)) + time.Duration(i).String()
	}
	for i := 0; i < len(names); i += 100 {
		chunk := names[i : i+100]
		err := a.UpdateBuckets(ctx, t0, chunk, func(cur []storage.Bucket) ([]storage.Bucket, error) {
			for j := range cur {
				cur[j].Tokens, cur[j].ExpiresAt = 1, t0.Add(time.Minute)
				if i == 0 && j == 0 {
					cur[j].ExpiresAt = t0.Add(time.Hour) // lives on
				}
			}
			return cur, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, err := b.CollectBudgets(ctx, t0.Add(time.Minute-1)); err != nil || n != 0 {
		t.Fatalf("collected %d before anything expired (err %v)", n, err)
	}
	n, err := b.CollectBudgets(ctx, t0.Add(time.Minute))
	if err != nil || n != len(names)-1 {
		t.Fatalf("collected %d, want %d (err %v)", n, len(names)-1, err)
	}
	got, err := a.ReadBuckets(ctx, t0, names[:2])
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Tokens != 1 || !got[1].Missing() {
		t.Errorf("after collecting: %+v", got)
	}
	var left int
	if err := a.Pool().QueryRow(ctx, "SELECT count(*) FROM budgets").Scan(&left); err != nil || left != 1 {
		t.Errorf("%d rows left (err %v), want 1", left, err)
	}
}
