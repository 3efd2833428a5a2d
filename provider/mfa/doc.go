// Package mfa owns what a second factor is, apart from any page: TOTP
// keys (RFC 6238) and the check of a code against one, single-use
// recovery codes, the sealing of factor secrets at rest, and the RFC 8176
// method names (amr) and authentication context classes (acr) a sign-in
// earns.
//
// It must not import the provider package (the HTTP layer), a storage
// backend or the CLI: the pages, the admin commands and the tests all
// build on it. It reads and writes storage.Factors values, never a Store.
package mfa
