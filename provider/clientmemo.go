package provider

// One request looks its client up several times: fosite authenticates the
// client, then loads the token or code, whose record names the client
// again, and an introspection may involve two clients (the caller and the
// token's). The memo makes each client one load and one build per request.

import (
	"context"
	"net/http"
	"sync"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/storage"
)

type clientMemoKey struct{}

// clientMemo holds, for one request, the client records loaded and the
// fosite clients built from them. It never outlives its request, so a
// change to a client shows from the next request on.
type clientMemo struct {
	mu      sync.Mutex
	records []memoRecord
	built   []builtClient
	// A request involves one client, at most two: room for them comes
	// with the memo, in one allocation.
	recordsBuf [2]memoRecord
	builtBuf   [2]builtClient
}

// memoRecord is a client as stored, under the ID it was asked for.
type memoRecord struct {
	id  string
	rec storage.Client
}

func newClientMemo() *clientMemo {
	m := &clientMemo{}
	m.records, m.built = m.recordsBuf[:0], m.builtBuf[:0]
	return m
}

// builtClient is a client as GetClient adapted it: the secret method the
// request authenticates with and the authorization request it is bound
// to are part of the key, so a client adapted for one call is never
// handed to a call that would adapt it otherwise.
type builtClient struct {
	id, secretMethod string
	authorize        *fosite.AuthorizeRequest
	client           *client
}

// withClientMemo gives each request its memo. It wraps the endpoints that
// authenticate a client and then load a token, code or pushed request
// naming a client (routes.go); elsewhere a request loads its client once.
func withClientMemo(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		next(w, r.WithContext(context.WithValue(r.Context(), clientMemoKey{}, newClientMemo())))
	}
}

func clientMemoFrom(ctx context.Context) *clientMemo {
	m, _ := ctx.Value(clientMemoKey{}).(*clientMemo)
	return m
}

// clientRecord loads the stored client id, once per request when ctx
// carries a memo. Only a found client is remembered.
func clientRecord(ctx context.Context, store storage.Store, id string) (storage.Client, error) {
	m := clientMemoFrom(ctx)
	if m == nil {
		return store.GetClient(ctx, id)
	}
	m.mu.Lock()
	for _, r := range m.records {
		if r.id == id {
			m.mu.Unlock()
			return r.rec, nil
		}
	}
	m.mu.Unlock()
	rec, err := store.GetClient(ctx, id)
	if err != nil {
		return rec, err
	}
	m.mu.Lock()
	m.records = append(m.records, memoRecord{id: id, rec: rec})
	m.mu.Unlock()
	return rec, nil
}

// lookup returns the client built for exactly this adaptation, if any.
func (m *clientMemo) lookup(id, secretMethod string, ar *fosite.AuthorizeRequest) (*client, bool) {
	if m == nil {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.built {
		if b.id == id && b.secretMethod == secretMethod && b.authorize == ar {
			return b.client, true
		}
	}
	return nil, false
}

func (m *clientMemo) remember(id, secretMethod string, ar *fosite.AuthorizeRequest, c *client) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.built = append(m.built, builtClient{id: id, secretMethod: secretMethod, authorize: ar, client: c})
}
