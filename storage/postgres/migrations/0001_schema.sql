-- The records of storage.Store. Filled in by the store's implementation.
CREATE TABLE placeholder_0001 (id integer);
