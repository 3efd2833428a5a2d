package storagetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/smallsso/provider/storage"
)

// testBatchFailuresStayOwn races writers that succeed against writers that
// fail (a duplicate, an update whose function refuses, a transaction that
// writes and rolls back). A backend that shares one commit among
// concurrent writers must not let a failed one undo, or leak into, the
// others.
func testBatchFailuresStayOwn(t *testing.T, s storage.Store) {
	ctx := t.Context()
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create alice")
	ok(t, s.CreateToken(ctx, token(storage.KindAccessToken, "taken", "r-taken")), "create taken")
	errRefused := errors.New("refused by update function")
	const rounds = 5
	for round := range rounds {
		sig := func(i int) string { return fmt.Sprintf("r%d-%02d", round, i) }
		errs := race(func(i int) error {
			switch i % 4 {
			case 0:
				return s.CreateToken(ctx, token(storage.KindAccessToken, sig(i), "r-"+sig(i)))
			case 1:
				return s.CreateToken(ctx, token(storage.KindAccessToken, "taken", "r-"+sig(i)))
			case 2:
				return s.UpdateUser(ctx, "u-alice", func(u storage.User) (storage.User, error) {
					u.Name = "changed by " + sig(i)
					return u, errRefused
				})
			default:
				txCtx, err := s.BeginTx(ctx)
				if err != nil {
					return err
				}
				if err := s.CreateToken(txCtx, token(storage.KindRefreshToken, sig(i), "r-"+sig(i))); err != nil {
					_ = s.RollbackTx(txCtx)
					return err
				}
				return s.RollbackTx(txCtx)
			}
		})
		for i, err := range errs {
			switch i % 4 {
			case 0, 3:
				ok(t, err, "writer "+sig(i))
			case 1:
				isErr(t, err, storage.ErrAlreadyExists, "duplicate "+sig(i))
			case 2:
				isErr(t, err, errRefused, "refused update "+sig(i))
			}
		}
		for i := range racers {
			switch i % 4 {
			case 0:
				_, err := s.GetToken(ctx, storage.KindAccessToken, sig(i))
				ok(t, err, "committed token "+sig(i))
			case 3:
				_, err := s.GetToken(ctx, storage.KindRefreshToken, sig(i))
				isErr(t, err, storage.ErrNotFound, "rolled back token "+sig(i))
			}
		}
	}
	got, err := s.GetToken(ctx, storage.KindAccessToken, "taken")
	ok(t, err, "get taken")
	same(t, got.RequestID, "r-taken", "the duplicate writers did not replace the token")
	alice, err := s.GetUser(ctx, "u-alice")
	ok(t, err, "get alice")
	same(t, alice.Name, user("u-alice", "alice").Name, "refused updates left alice alone")
}
