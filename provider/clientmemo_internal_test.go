package provider

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

// countingStore counts client loads.
type countingStore struct {
	storage.Store
	clientLoads atomic.Int64
}

func (s *countingStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	s.clientLoads.Add(1)
	return s.Store.GetClient(ctx, id)
}

func newMemoStore(t *testing.T) (*fositeStore, *countingStore) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "p.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	for _, c := range []storage.Client{
		{ID: "basic", SecretHash: "h", ClientSettings: storage.ClientSettings{TokenEndpointAuthMethod: "client_secret_basic"}},
		{ID: "pkjwt", ClientSettings: storage.ClientSettings{TokenEndpointAuthMethod: "private_key_jwt"}},
	} {
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	cs := &countingStore{Store: st}
	return &fositeStore{store: cs}, cs
}

// requestContext is what withClientMemo gives a request.
func requestContext() context.Context {
	return context.WithValue(context.Background(), clientMemoKey{}, newClientMemo())
}

func mustGetClient(t *testing.T, s *fositeStore, ctx context.Context, id string) *client {
	t.Helper()
	c, err := s.GetClient(ctx, id)
	if err != nil {
		t.Fatalf("GetClient(%s): %v", id, err)
	}
	return c.(*client)
}

// Within a request a client is loaded once and built once per adaptation;
// an adaptation (the secret method in use, the authorization request it is
// bound to) never reaches a call that asks for another.
func TestGetClientMemoKeepsAdaptationsApart(t *testing.T) {
	t.Parallel()
	s, cs := newMemoStore(t)
	ctx := requestContext()

	plain := mustGetClient(t, s, ctx, "basic")
	if again := mustGetClient(t, s, ctx, "basic"); again != plain {
		t.Error("same request, same adaptation: built twice")
	}
	post := mustGetClient(t, s, withSecretMethod(ctx, "client_secret_post"), "basic")
	if post == plain || post.TokenEndpointAuthMethod != "client_secret_post" {
		t.Errorf("secret method not applied to its own client: %q", post.TokenEndpointAuthMethod)
	}
	if plain.TokenEndpointAuthMethod != "client_secret_basic" || mustGetClient(t, s, ctx, "basic").TokenEndpointAuthMethod != "client_secret_basic" {
		t.Error("the post adaptation leaked into the unadapted client")
	}
	// A client registered for another method keeps it.
	if c := mustGetClient(t, s, withSecretMethod(ctx, "client_secret_post"), "pkjwt"); c.TokenEndpointAuthMethod != "private_key_jwt" {
		t.Errorf("private_key_jwt client adapted to %q", c.TokenEndpointAuthMethod)
	}

	ar1, ar2 := fosite.NewAuthorizeRequest(), fosite.NewAuthorizeRequest()
	b1 := mustGetClient(t, s, context.WithValue(ctx, fosite.AuthorizeRequestContextKey, ar1), "basic")
	b2 := mustGetClient(t, s, context.WithValue(ctx, fosite.AuthorizeRequestContextKey, ar2), "basic")
	if b1.authorize != ar1 || b2.authorize != ar2 || plain.authorize != nil {
		t.Error("authorization request bound to the wrong client")
	}
	if again := mustGetClient(t, s, context.WithValue(ctx, fosite.AuthorizeRequestContextKey, ar1), "basic"); again != b1 {
		t.Error("same authorization request: built twice")
	}
	if n := cs.clientLoads.Load(); n != 2 {
		t.Errorf("%d loads in one request for two clients, want 2", n)
	}

	// Another request loads afresh and sees a change made in between.
	if err := cs.UpdateClient(context.Background(), "basic", func(c storage.Client) (storage.Client, error) {
		c.TokenEndpointAuthMethod = "client_secret_post"
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	next := mustGetClient(t, s, requestContext(), "basic")
	if next == plain || next.TokenEndpointAuthMethod != "client_secret_post" {
		t.Errorf("next request got %q", next.TokenEndpointAuthMethod)
	}
	if n := cs.clientLoads.Load(); n != 3 {
		t.Errorf("%d loads, want 3", n)
	}

	// Without a memo (outside an HTTP request) every call loads.
	mustGetClient(t, s, context.Background(), "basic")
	mustGetClient(t, s, context.Background(), "basic")
	if n := cs.clientLoads.Load(); n != 5 {
		t.Errorf("%d loads, want 5", n)
	}
	// An unknown client is not found, and not remembered as anything.
	if _, err := s.GetClient(ctx, "nobody"); err == nil {
		t.Error("unknown client found")
	}
}
