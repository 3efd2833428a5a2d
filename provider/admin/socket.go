package admin

// The admin socket lets the CLI manage users, clients and trusted issuers
// while `serve` holds the bbolt file lock. It is plain HTTP+JSON over a unix
// socket that only the owner can open (mode 0600); possession of the socket
// is the authorization, as with the Docker socket.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/gorilla/mux"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/userspec"
	"github.com/smallsso/provider/storage"
)

// Listen opens the admin socket at path. A stale socket left by a
// crashed server is removed; a live one means another server runs.
func Listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("admin socket %s: another server is listening", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return l, nil
}

type adminError struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

// Handler serves a on the admin socket.
func Handler(a Admin) http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/users", func(w http.ResponseWriter, r *http.Request) {
		var n userspec.User
		if !decode(w, r, &n) {
			return
		}
		u, err := a.AddUser(r.Context(), n)
		reply(w, u, err)
	}).Methods("POST")
	r.HandleFunc("/users", func(w http.ResponseWriter, r *http.Request) {
		us, err := a.ListUsers(r.Context())
		reply(w, us, err)
	}).Methods("GET")
	// Names travel in the query or body, never in the path: a username
	// may contain "/" or be "..".
	r.HandleFunc("/users", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, a.DeleteUser(r.Context(), r.URL.Query().Get("username")))
	}).Methods("DELETE")
	r.HandleFunc("/users/password", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Username, Password string }
		if !decode(w, r, &body) {
			return
		}
		reply(w, nil, a.SetPassword(r.Context(), body.Username, body.Password))
	}).Methods("PUT")
	r.HandleFunc("/clients", func(w http.ResponseWriter, r *http.Request) {
		var spec clientspec.Spec
		if !decode(w, r, &spec) {
			return
		}
		c, secret, err := a.AddClient(r.Context(), spec)
		reply(w, addedClient{Client: c, Secret: secret}, err)
	}).Methods("POST")
	r.HandleFunc("/clients", func(w http.ResponseWriter, r *http.Request) {
		cs, err := a.ListClients(r.Context())
		reply(w, cs, err)
	}).Methods("GET")
	r.HandleFunc("/clients", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, a.DeleteClient(r.Context(), r.URL.Query().Get("id")))
	}).Methods("DELETE")
	r.HandleFunc("/trust", func(w http.ResponseWriter, r *http.Request) {
		var spec clientspec.TrustSpec
		if !decode(w, r, &spec) {
			return
		}
		ti, err := a.AddTrustedIssuer(r.Context(), spec)
		reply(w, ti, err)
	}).Methods("POST")
	r.HandleFunc("/trust", func(w http.ResponseWriter, r *http.Request) {
		all, err := a.ListTrustedIssuers(r.Context())
		reply(w, all, err)
	}).Methods("GET")
	r.HandleFunc("/trust", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, a.DeleteTrustedIssuer(r.Context(), r.URL.Query().Get("id")))
	}).Methods("DELETE")
	r.HandleFunc("/backup", serveBackup(a)).Methods("GET")
	factorRoutes(r, a)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, adminError{Error: "unknown admin request " + r.Method + " " + r.URL.Path + " (is the server older than this CLI?)", Kind: "internal"})
	})
	return r
}

type addedClient struct {
	Client storage.Client `json:"client"`
	Secret string         `json:"secret,omitempty"`
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{Error: "malformed request: " + err.Error(), Kind: "invalid"})
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	var inv *clientspec.InvalidError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, storage.ErrNotFound):
		writeJSON(w, http.StatusNotFound, adminError{Error: err.Error(), Kind: "not_found"})
	case errors.Is(err, storage.ErrAlreadyExists):
		writeJSON(w, http.StatusConflict, adminError{Error: err.Error(), Kind: "exists"})
	case errors.As(err, &inv):
		writeJSON(w, http.StatusBadRequest, adminError{Error: inv.Msg, Kind: "invalid"})
	default:
		writeJSON(w, http.StatusInternalServerError, adminError{Error: err.Error(), Kind: "internal"})
	}
}

// Client is an Admin that talks to a running server's admin socket.
type Client struct {
	hc *http.Client
}

var _ Admin = (*Client)(nil)

// Dial returns a client for the socket at path. It does not connect
// until the first call; every call has a timeout, so the CLI never hangs.
func Dial(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://admin"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e adminError
		if json.NewDecoder(resp.Body).Decode(&e) != nil {
			return fmt.Errorf("admin socket: HTTP %d", resp.StatusCode)
		}
		switch e.Kind {
		case "not_found":
			return fmt.Errorf("%s: %w", e.Error, storage.ErrNotFound)
		case "exists":
			return fmt.Errorf("%s: %w", e.Error, storage.ErrAlreadyExists)
		case "invalid":
			return &clientspec.InvalidError{Msg: e.Error}
		default:
			return errors.New(e.Error)
		}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *Client) AddUser(ctx context.Context, n userspec.User) (storage.User, error) {
	var u storage.User
	return u, c.do(ctx, "POST", "/users", n, &u)
}

func (c *Client) ListUsers(ctx context.Context) ([]storage.User, error) {
	var us []storage.User
	return us, c.do(ctx, "GET", "/users", nil, &us)
}

func (c *Client) DeleteUser(ctx context.Context, username string) error {
	return c.do(ctx, "DELETE", "/users?"+url.Values{"username": {username}}.Encode(), nil, nil)
}

func (c *Client) SetPassword(ctx context.Context, username, password string) error {
	return c.do(ctx, "PUT", "/users/password", struct{ Username, Password string }{username, password}, nil)
}

func (c *Client) AddClient(ctx context.Context, spec clientspec.Spec) (storage.Client, string, error) {
	var out addedClient
	err := c.do(ctx, "POST", "/clients", spec, &out)
	return out.Client, out.Secret, err
}

func (c *Client) ListClients(ctx context.Context) ([]storage.Client, error) {
	var cs []storage.Client
	return cs, c.do(ctx, "GET", "/clients", nil, &cs)
}

func (c *Client) DeleteClient(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/clients?"+url.Values{"id": {id}}.Encode(), nil, nil)
}

func (c *Client) AddTrustedIssuer(ctx context.Context, spec clientspec.TrustSpec) (storage.TrustedIssuer, error) {
	var ti storage.TrustedIssuer
	return ti, c.do(ctx, "POST", "/trust", spec, &ti)
}

func (c *Client) ListTrustedIssuers(ctx context.Context) ([]storage.TrustedIssuer, error) {
	var all []storage.TrustedIssuer
	return all, c.do(ctx, "GET", "/trust", nil, &all)
}

func (c *Client) DeleteTrustedIssuer(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/trust?"+url.Values{"id": {id}}.Encode(), nil, nil)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
