package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"go.yaml.in/yaml/v3"
)

// warnReadableSecrets warns at start when the config file holds secrets
// (client secrets, passwords, their hashes, tokens) and other users of the
// machine may read it: the file should be the server's alone. It is a
// warning, not a refusal, so that a container whose files are owned by
// root and readable by all still starts.
func warnReadableSecrets(path string, log *slog.Logger) {
	if path == "" || runtime.GOOS == "windows" { // no Unix mode bits there
		return
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o044 == 0 {
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return
	}
	keys := secretKeys(raw)
	if len(keys) == 0 {
		return
	}
	mode := fmt.Sprintf("%04o", fi.Mode().Perm())
	log.Warn("config file holds secrets and is readable by other users; run chmod 600 on it",
		"path", path, "mode", mode, "keys", strings.Join(keys, ", "), "fix", "chmod 600 "+path)
}

// secretKeys lists the key paths of the YAML document that hold a secret
// value: a key named like a secret (secret, password, their _hash forms,
// anything ending in _token or _secret) with a non-empty value. Key names
// ending in _file or _lifespan only point at or describe one.
func secretKeys(raw []byte) []string {
	var doc yaml.Node
	if yaml.Unmarshal(raw, &doc) != nil {
		return nil
	}
	var found []string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key, val := n.Content[i].Value, n.Content[i+1]
				p := key
				if path != "" {
					p = path + "." + key
				}
				if val.Kind == yaml.ScalarNode && val.Value != "" && (secretName(key) || key == "dsn" && dsnHasPassword(val.Value)) {
					found = append(found, p)
					continue
				}
				walk(val, p)
			}
		}
	}
	walk(&doc, "")
	return found
}

func secretName(key string) bool {
	key = strings.ToLower(key)
	switch {
	case strings.HasSuffix(key, "_file"), strings.HasSuffix(key, "_lifespan"), strings.HasSuffix(key, "_uri"):
		return false
	case key == "secret", key == "password", key == "token", key == "encryption_key":
		return true
	}
	for _, suffix := range []string{"_secret", "_password", "_token", "secret_hash", "password_hash", "private_key"} {
		if strings.HasSuffix(key, suffix) {
			return true
		}
	}
	return false
}

// dsnHasPassword reports whether a PostgreSQL connection string (storage.postgres.dsn)
// carries a password (URL user:password@, or password=).
func dsnHasPassword(dsn string) bool {
	return urlPassword.MatchString(dsn) || kvPassword.MatchString(dsn)
}
