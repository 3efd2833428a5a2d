package clientspec

import (
	"os"
	"path/filepath"
)

// Reading what a declaration names on disk happens only in the config
// loader, which knows the directory relative paths start from.

// ReadJWKSFile replaces jwks_file with the key set it names, read now;
// a relative path is relative to dir (the config file's directory).
func (t TrustSpec) ReadJWKSFile(dir string) (TrustSpec, error) {
	if t.JWKSFile == "" {
		return t, nil
	}
	if t.JWKS != "" || t.JWKSURI != "" {
		return t, badField("jwks", "give exactly one of jwks, jwks_file, jwks_uri")
	}
	path := t.JWKSFile
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return t, badField("jwks_file", "%v", err)
	}
	t.JWKS, t.JWKSFile = JWKSDoc(raw), ""
	return t, nil
}
