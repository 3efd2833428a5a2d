package postgres

import "time"

// SetClock makes s read the time from now (CheckWritable's cache).
func SetClock(s *Store, now func() time.Time) { s.now = now }

// SetGCBatch sets the number of records one GarbageCollect statement
// removes.
func SetGCBatch(s *Store, n int) { s.gcBatchOverride = n }

// GCLockKey is the advisory lock GarbageCollect holds.
const GCLockKey = gcLock

// SetGCAfterBatch has GarbageCollect call fn after each committed batch.
func SetGCAfterBatch(s *Store, fn func()) { s.gcAfterBatch = fn }
