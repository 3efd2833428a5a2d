package provider_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// Discovery lists every prompt value the authorization endpoint accepts,
// select_account included (a relying party may check before sending it).
func TestDiscoveryListsSelectAccount(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	resp, err := http.Get(ts.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Prompts []string `json:"prompt_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"none", "login", "consent", "select_account"} {
		if !slices.Contains(doc.Prompts, want) {
			t.Errorf("prompt_values_supported %v lacks %q", doc.Prompts, want)
		}
	}
}
