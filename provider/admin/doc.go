// Package admin owns the operator's surface: the Admin API the CLI uses
// (users, their second factors, clients, trusted issuers, online backups),
// Local, which applies it to an open store, the admin socket (its server,
// and the client the CLI dials when a running server holds the database),
// and the declarative sync that makes
// the store match the clients, users and trusted issuers of the config file.
// Audited records every change in the audit log with its actor: the admin
// socket's peer (SO_PEERCRED, set by ConnContext) or the CLI's user.
//
// It validates through provider/clientspec and provider/userspec, so the
// CLI refuses what registration and the account page refuse. It must not
// import provider (the HTTP/protocol core), and provider must not import
// it: a running server's reactions to admin actions (back-channel logout,
// the throttle forgetting sign-in places) are passed in as functions by
// cmd/provider, which wires the two.
package admin
