package backup

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// seal makes an age file of a tar of entries, as a hand-made (or hostile)
// bundle would be.
func seal(t *testing.T, pass string, entries ...[2]string) []byte {
	t.Helper()
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(10)
	var buf bytes.Buffer
	enc, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(enc)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e[0], Size: int64(len(e[1])), Mode: 0o600}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e[1]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// unbundle writes only the database and plain file names inside the key
// directory, whatever the bundle says.
func TestUnbundleRefusesStrayEntries(t *testing.T) {
	t.Parallel()
	const pass = "a long enough passphrase"
	header := [2]string{bundleMeta, `{"format":"smallsso-provider-bundle","version":1}`}
	for name, tc := range map[string]struct {
		entries [][2]string
		want    string
	}{
		"escape":      {[][2]string{header, {"keys/../../escaped", "x"}}, "unexpected bundle entry"},
		"nested":      {[][2]string{header, {"keys/sub/k", "x"}}, "unexpected bundle entry"},
		"lock file":   {[][2]string{header, {"keys/keys.lock", "x"}}, "unexpected bundle entry"},
		"other file":  {[][2]string{header, {"etc/passwd", "x"}}, "unexpected bundle entry"},
		"no header":   {[][2]string{{bundleDB, "x"}}, "not a provider bundle"},
		"new version": {[][2]string{{bundleMeta, `{"format":"smallsso-provider-bundle","version":2}`}}, "this build reads"},
		"no keys":     {[][2]string{header, {bundleDB, "x"}}, "lacks the database or the keys"},
		"two dbs":     {[][2]string{header, {bundleDB, "x"}, {bundleDB, "y"}}, "unexpected bundle entry"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			keysDir := filepath.Join(dir, "keys")
			if err := os.Mkdir(keysDir, 0o700); err != nil {
				t.Fatal(err)
			}
			err := unbundle(bytes.NewReader(seal(t, pass, tc.entries...)), pass, filepath.Join(dir, "db"), keysDir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "escaped")); err == nil {
				t.Errorf("a bundle entry escaped the key directory")
			}
		})
	}
	if err := unbundle(bytes.NewReader(seal(t, pass, header)), "another passphrase", "", ""); err != ErrWrongPassphrase {
		t.Errorf("wrong passphrase: %v", err)
	}
}
