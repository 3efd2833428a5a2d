package provider

// Discovery and the JWKS are the same bytes for every request until the
// key set changes, so they are rendered once per key set and served with
// an ETag: relying parties that revalidate get a 304.

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"sync/atomic"
)

// rendered is one document as served: the JSON body and its strong ETag,
// for the version of its inputs named by version.
type rendered struct {
	version string
	body    []byte
	etag    string
}

// renderCache holds the last rendered version of a document. A request
// whose inputs name another version renders it anew and replaces it; two
// requests racing to do so both serve correct bytes. The zero value is
// ready to use.
type renderCache struct {
	last atomic.Pointer[rendered]
}

// get returns the document for version, calling render only when the
// cached one is for another version.
func (c *renderCache) get(version string, render func() ([]byte, error)) (*rendered, error) {
	if r := c.last.Load(); r != nil && r.version == version {
		return r, nil
	}
	body, err := render()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	r := &rendered{version: version, body: body, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}
	c.last.Store(r)
	return r, nil
}

// serve writes doc with its ETag and cacheControl, or 304 Not Modified
// when the request already holds this version (RFC 9110 §13.1.2).
func (doc *rendered) serve(w http.ResponseWriter, r *http.Request, cacheControl string) {
	h := w.Header()
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", doc.etag)
	if etagMatches(r.Header.Get("If-None-Match"), doc.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(doc.body)
}

// etagMatches is If-None-Match's weak comparison of a list of entity tags
// against ours.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
			return true
		}
	}
	return false
}
