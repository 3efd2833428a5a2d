-- The limiters' state every replica shares (storage.Budgets, budgets.go):
-- sign-in throttle buckets, known sign-in places, registration counters
-- and per-client rate limits. Times are Unix nanoseconds from the
-- caller's clock; a row whose expires_ns has passed reads as missing and
-- the janitor removes it. Names compare bytewise (COLLATE "C"), the order
-- rows are locked in.
CREATE TABLE budgets (
    name       text COLLATE "C" PRIMARY KEY,
    tokens     double precision NOT NULL DEFAULT 0,
    at_ns      bigint NOT NULL DEFAULT 0,
    expires_ns bigint NOT NULL DEFAULT 0
);
CREATE INDEX budgets_expires_ns ON budgets (expires_ns);
