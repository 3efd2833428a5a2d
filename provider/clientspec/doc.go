// Package clientspec owns the one description of a client that the config
// file, the CLI, dynamic registration and storage agree on (Spec), and of a
// trusted issuer of JWT assertions (TrustSpec), with their validation:
// redirect and web URLs, grant and response type combinations, token
// endpoint authentication methods, key sets and algorithms. Whoever creates
// or changes a client validates through Spec.Validate and stores through
// Spec.Record, so the CLI cannot accept what registration refuses.
//
// It knows the vocabulary of the protocol, not its machinery: it must not
// import provider (the HTTP/protocol core), provider/admin or fosite.
package clientspec
