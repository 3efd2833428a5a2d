-- A person's second factors (storage.Factors, factors.go): one row per
-- user, the record's JSON in data. The TOTP key and passkey credentials
-- in it are sealed by the provider and recovery codes are keyed hashes,
-- so the row reveals no secret. A row goes with its user: the foreign key
-- deletes it in the same statement as the user's row, whichever binary
-- (this one or an older replica's) deletes the user.
CREATE TABLE factors (
	user_id text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	data json NOT NULL
);
