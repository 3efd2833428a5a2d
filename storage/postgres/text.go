package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// textKey is s as a PostgreSQL text value can hold it. Text holds no NUL
// byte and only valid UTF-8, while the keys a request carries (a JWT ID, a
// client_id, a username typed on the login page) may hold anything. Such a
// key is looked up, and a JWT ID recorded, by its digest instead: it is
// then not found, or refused as a replay, like any other key, rather than
// failing the statement with a 500. Keys the provider makes are always
// valid text and are kept as they are.
func textKey(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "\uFFFDsha256:" + hex.EncodeToString(sum[:])
}
