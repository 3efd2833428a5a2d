package keys

import (
	"slices"
	"strings"
	"testing"
)

func TestRotateOneAlgorithm(t *testing.T) {
	t.Parallel()
	m := mustOpen(t, t.TempDir(), Options{Algorithms: []string{"ES256", "EdDSA"}})
	es := mustActive(t, m, "ES256")
	ed := mustActive(t, m, "EdDSA")

	fresh, err := m.Rotate("EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) != 1 || fresh[0].Alg != "EdDSA" || fresh[0].ID == ed.ID {
		t.Fatalf("Rotate(EdDSA) = %+v, want one new EdDSA key", fresh)
	}
	if got := mustActive(t, m, "ES256"); got.ID != es.ID {
		t.Errorf("ES256 key changed to %s by an EdDSA rotation", got.ID)
	}
	if got := mustActive(t, m, "EdDSA"); got.ID != fresh[0].ID {
		t.Errorf("active EdDSA = %s, want %s", got.ID, fresh[0].ID)
	}
	got := kids(m.JWKS())
	if len(got) != 3 || !slices.Contains(got, ed.ID) || !slices.Contains(got, es.ID) {
		t.Errorf("JWKS kids = %v, want ES256, new EdDSA and retired EdDSA", got)
	}
	for _, info := range m.List() {
		if info.ID == ed.ID && info.State != StateRetired {
			t.Errorf("old EdDSA key is %s, want retired", info.State)
		}
		if info.ID == es.ID && info.State != StateActive {
			t.Errorf("ES256 key is %s, want active", info.State)
		}
	}
	signAndVerify(t, m, "EdDSA")

	if _, err := m.Rotate("RS256"); err == nil || !strings.Contains(err.Error(), "not a configured algorithm") {
		t.Errorf("Rotate(RS256) on an ES256/EdDSA manager: err = %v", err)
	}
}
