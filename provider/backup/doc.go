// Package backup owns the files an operator keeps and brings back: a
// database backup written whole or not at all, the encrypted bundle of the
// database and the key directory (age, with a passphrase), and restoring
// either in place of the database and key directory.
//
// It reads and checks database files only through storage/bolt and key
// directories only through keys. It must not import the provider package or
// provider/admin: the CLI passes in how the database is copied (through a
// running server's admin socket, or from the file).
package backup
