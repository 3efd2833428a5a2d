-- The keyring: the signing keys and named secrets (the "provider" secret)
-- that every replica shares (keyring.go). Private key material and
-- secrets are sealed with AES-256-GCM under keys.encryption_key; the
-- manifest (kids, algorithms, dates) is public and stored plain.

-- One row: the manifest, and a version bumped by every write, which
-- replicas poll (once a second) to notice a rotation.
CREATE TABLE keyring_manifest (
	id boolean PRIMARY KEY DEFAULT true CHECK (id),
	version bigint NOT NULL,
	manifest jsonb NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per key: its private JWK, sealed with the kid as additional
-- data.
CREATE TABLE keyring_keys (
	kid text PRIMARY KEY,
	sealed bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per named secret, sealed with its name as additional data.
-- Created once, never changed.
CREATE TABLE keyring_secrets (
	name text PRIMARY KEY,
	sealed bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- One row: a known value sealed under the encryption key of the first
-- replica, so a replica given another key fails at start, clearly.
CREATE TABLE keyring_check (
	id boolean PRIMARY KEY DEFAULT true CHECK (id),
	sealed bytea NOT NULL
);
