// Package secret owns the provider's handling of secrets at rest and of
// fresh random ones: hashing and checking passwords and client secrets
// (argon2id, bcrypt accepted), sealing the client secrets that must be read
// back (client_secret_jwt), deriving per-purpose keys from the provider
// secret, and generating tokens and passwords.
//
// It is a leaf: it imports no other package of this module, so everything
// from the protocol core to the CLI can use it without a cycle.
package secret
