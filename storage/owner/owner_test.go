//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package owner

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func uidOf(t *testing.T, path string) int {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Sys().(*syscall.Stat_t).Uid)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the ownership tests must run as root (euid %d)", os.Geteuid())
	}
	t.Skipf("SKIPPED: not root (euid %d): giving files to another user is not checked", os.Geteuid())
}

// Like takes the owner of the first ref that exists; TreeLike gives it to
// everything under the directory.
func TestLike(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref")
	if err := os.WriteFile(ref, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(ref, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Like(file, filepath.Join(dir, "missing"), ref, dir); err != nil {
		t.Fatal(err)
	}
	if got := uidOf(t, file); got != 65534 {
		t.Errorf("Like: owner %d, want 65534", got)
	}
	if err := Like(file, filepath.Join(dir, "missing")); err != nil || uidOf(t, file) != 65534 {
		t.Errorf("Like with no ref that exists changed the file (%v)", err)
	}

	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "sub", "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := TreeLike(tree, ref); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tree, filepath.Join(tree, "sub"), filepath.Join(tree, "sub", "f")} {
		if got := uidOf(t, p); got != 65534 {
			t.Errorf("TreeLike: %s owned by %d, want 65534", p, got)
		}
	}

	// Not root: nothing changes.
	geteuid = func() int { return 1000 }
	defer func() { geteuid = os.Geteuid }()
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Like(other, ref); err != nil || uidOf(t, other) != 0 {
		t.Errorf("Like as a user other than root changed the owner (%v)", err)
	}
	if err := TreeLike(tree, dir); err != nil || uidOf(t, tree) != 65534 {
		t.Errorf("TreeLike as a user other than root changed the owner (%v)", err)
	}
}
