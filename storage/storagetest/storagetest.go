// Package storagetest is the conformance suite every storage.Store backend
// passes. It knows no backend: a backend's test hands it a constructor.
//
//	func TestStore(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { return openFresh(t) })
//	}
//
// Times in fixtures are truncated to microseconds and compared as instants,
// and empty slices compare equal to nil, so a backend is free to store
// timestamps at microsecond precision (PostgreSQL) and to not tell an empty
// list from a missing one.
package storagetest

import (
	"testing"

	"github.com/smallsso/provider/storage"
)

type subtest struct {
	name string
	run  func(t *testing.T, s storage.Store)
}

func subtests() []subtest {
	return []subtest{
		{"UserCRUD", testUserCRUD},
		{"UserDuplicates", testUserDuplicates},
		{"UserMissing", testUserMissing},
		{"UserRename", testUserRename},
		{"UserUpdateErrorAborts", testUserUpdateErrorAborts},
		{"UserReturnedByValue", testUserReturnedByValue},

		{"ClientCRUD", testClientCRUD},
		{"ClientDuplicatesAndMissing", testClientDuplicatesAndMissing},
		{"ClientUpdateErrorAborts", testClientUpdateErrorAborts},
		{"ClientReturnedByValue", testClientReturnedByValue},

		{"TrustedIssuers", testTrustedIssuers},

		{"TokenCRUDPerKind", testTokenCRUDPerKind},
		{"TokenKindsIndependent", testTokenKindsIndependent},
		{"TokenDuplicate", testTokenDuplicate},
		{"TokenDeactivate", testTokenDeactivate},
		{"TokenDeactivateRace", testTokenDeactivateRace},
		{"TokenRevokeByRequestID", testTokenRevokeByRequestID},
		{"TokenRevokeAfterDeleteAndRecreate", testTokenRevokeAfterDeleteAndRecreate},
		{"ListSubjectTokens", testListSubjectTokens},
		{"RevokeSubjectClient", testRevokeSubjectClient},

		{"BrowserSessions", testBrowserSessions},
		{"ListUserSessions", testListUserSessions},
		{"Consents", testConsents},
		{"JTIs", testJTIs},

		{"ConcurrentUserUpdates", testConcurrentUserUpdates},
		{"ConcurrentClientUpdates", testConcurrentClientUpdates},
		{"ConcurrentCreateSameUsername", testConcurrentCreateSameUsername},
		{"BatchFailuresStayOwn", testBatchFailuresStayOwn},

		{"GarbageCollect", testGarbageCollect},
		{"GarbageCollectCleansIndexes", testGarbageCollectCleansIndexes},
		{"GarbageCollectSkipsReplaced", testGarbageCollectSkipsReplaced},
		{"GarbageCollectKeepsReuseDetection", testGarbageCollectKeepsReuseDetection},
		{"GarbageCollectLetsWritersIn", testGarbageCollectLetsWritersIn},

		{"TokenReplay", testTokenReplay},
		{"TokenReplayCollected", testTokenReplayCollected},

		{"TxCommit", testTxCommit},
		{"TxRollback", testTxRollback},
		{"TxReadsOwnWrites", testTxReadsOwnWrites},
		{"TxIsolation", testTxIsolation},
		{"TxNestingFails", testTxNestingFails},
		{"TxEndWithoutTxFails", testTxEndWithoutTxFails},
		{"TxSentinelsKeepTx", testTxSentinelsKeepTx},

		{"CheckWritable", testCheckWritable},

		{"FactorsRoundTrip", testFactorsRoundTrip},
		{"FactorsMissing", testFactorsMissing},
		{"FactorsUpdateErrorAborts", testFactorsUpdateErrorAborts},
		{"FactorsInTx", testFactorsInTx},
		{"FactorsDeletedWithUser", testFactorsDeletedWithUser},
		{"FactorsRecoveryCodeRace", testFactorsRecoveryCodeRace},
		{"FactorsTOTPRace", testFactorsTOTPRace},
		{"SessionAMR", testSessionAMR},

		{"Walk", testWalk},
		{"OddKeys", testOddKeys},
	}
}

// Run runs the suite, one subtest per behaviour, each against a fresh,
// empty Store from newStore. The suite closes every Store it is given.
// Subtests run one after another, so newStore need not be safe for
// parallel use.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	for _, st := range subtests() {
		t.Run(st.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			st.run(t, s)
		})
	}
}
