package main

import "github.com/smallsso/provider/storage"

// budgetsOf is where the limiters (sign-in throttle, registration,
// per-client rate limits) keep their state: the store's own when it
// shares it between replicas (PostgreSQL implements storage.Budgets),
// else nil, which the provider takes for memory of its own (bbolt: one
// process, a restart forgives).
func budgetsOf(store any) storage.Budgets {
	b, _ := store.(storage.Budgets)
	return b
}
