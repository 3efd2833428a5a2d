-- The records of storage.Store (storage/postgres). What the store queries
-- by is a column with an index; the rest of a record is its JSON (the
-- storage package's field names) in data. Times are timestamptz
-- (microseconds); a NULL expires_at never expires.

CREATE TABLE users (
	id text PRIMARY KEY,
	username text NOT NULL UNIQUE,
	data json NOT NULL
);

CREATE TABLE clients (
	id text PRIMARY KEY,
	data json NOT NULL
);

CREATE TABLE trusted_issuers (
	id text PRIMARY KEY,
	data json NOT NULL
);

-- Token requests of every kind. active, replay and replay_until are
-- columns (DeactivateToken and SetTokenReplay change only them); data
-- holds the rest of the record.
CREATE TABLE tokens (
	kind text NOT NULL,
	signature text NOT NULL,
	request_id text NOT NULL,
	client_id text NOT NULL,
	subject text NOT NULL,
	active boolean NOT NULL,
	expires_at timestamptz,
	replay bytea,
	replay_until timestamptz,
	data json NOT NULL,
	PRIMARY KEY (kind, signature)
);
-- RevokeByRequestID.
CREATE INDEX tokens_request_id ON tokens (kind, request_id);
-- ListSubjectTokens (subject, kind) and RevokeSubjectClient (subject,
-- then client_id within the index). Tokens without a subject belong to
-- no one and are not indexed.
CREATE INDEX tokens_subject ON tokens (subject, kind, client_id) WHERE subject <> '';
-- GarbageCollect, oldest first.
CREATE INDEX tokens_expires_at ON tokens (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX tokens_replay_until ON tokens (replay_until) WHERE replay_until IS NOT NULL;

CREATE TABLE browser_sessions (
	id text PRIMARY KEY,
	user_id text NOT NULL,
	expires_at timestamptz,
	data json NOT NULL
);
CREATE INDEX browser_sessions_user_id ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires_at ON browser_sessions (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE consents (
	user_id text NOT NULL,
	client_id text NOT NULL,
	expires_at timestamptz,
	data json NOT NULL,
	PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_expires_at ON consents (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE jtis (
	id text PRIMARY KEY,
	expires_at timestamptz
);
CREATE INDEX jtis_expires_at ON jtis (expires_at) WHERE expires_at IS NOT NULL;

-- One row that CheckWritable (the readiness probe) updates: a real write
-- that touches no record.
CREATE TABLE heartbeat (
	id integer PRIMARY KEY CHECK (id = 1),
	beat_at timestamptz NOT NULL
);
INSERT INTO heartbeat (id, beat_at) VALUES (1, now());
