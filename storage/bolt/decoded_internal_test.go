package bolt

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/smallsso/provider/storage"
)

// fill sets every field of v (a struct, embedded ones included) to a
// non-zero value, slices and maps with one element.
func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Struct:
			if f.Type().PkgPath() == "time" {
				continue
			}
			fill(t, f)
		case reflect.String:
			f.SetString("x")
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(1)
		case reflect.Slice:
			s := reflect.MakeSlice(f.Type(), 1, 1)
			if s.Index(0).Kind() == reflect.String {
				s.Index(0).SetString("x")
			}
			f.Set(s)
		case reflect.Map:
			m := reflect.MakeMap(f.Type())
			m.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf([]any{"v"}))
			f.Set(m)
		case reflect.Pointer:
			p := reflect.New(f.Type().Elem())
			fill(t, p.Elem())
			f.Set(p)
		}
	}
}

// shared names the fields of a and b (same struct type) that share memory.
func shared(a, b reflect.Value, path string) []string {
	var out []string
	for i := range a.NumField() {
		name := path + a.Type().Field(i).Name
		fa, fb := a.Field(i), b.Field(i)
		switch fa.Kind() {
		case reflect.Struct:
			out = append(out, shared(fa, fb, name+".")...)
		case reflect.Slice, reflect.Map, reflect.Pointer:
			if !fa.IsNil() && fa.UnsafePointer() == fb.UnsafePointer() {
				out = append(out, name)
			}
		}
	}
	return out
}

// The cache hands out copies: no slice, map or pointer of a record it
// keeps is shared with a caller, for every field the records have now or
// will have (a new field that clone misses fails here).
func TestDecodedCacheClonesEveryField(t *testing.T) {
	t.Parallel()
	var c storage.Client
	fill(t, reflect.ValueOf(&c).Elem())
	if s := shared(reflect.ValueOf(c), reflect.ValueOf(cloneClient(c)), ""); len(s) > 0 {
		t.Errorf("cloneClient shares %v", s)
	}
	if got := cloneClient(c).Metadata["k"].([]any); &got[0] == &c.Metadata["k"].([]any)[0] {
		t.Error("cloneClient shares a list inside Metadata")
	}
	var u storage.User
	fill(t, reflect.ValueOf(&u).Elem())
	if s := shared(reflect.ValueOf(u), reflect.ValueOf(cloneUser(u)), ""); len(s) > 0 {
		t.Errorf("cloneUser shares %v", s)
	}
}

// A record changed by any write is read back changed, and mutating what a
// read returned changes nothing stored or cached.
func TestDecodedCacheFollowsWrites(t *testing.T) {
	t.Parallel()
	s, err := Open(filepath.Join(t.TempDir(), "provider.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.CreateClient(ctx, storage.Client{ID: "c", ClientSettings: storage.ClientSettings{Scopes: []string{"openid"}}}); err != nil {
		t.Fatal(err)
	}
	first, err := s.GetClient(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	first.Scopes[0] = "mutated by a caller"
	if again, _ := s.GetClient(ctx, "c"); again.Scopes[0] != "openid" {
		t.Fatalf("a caller's mutation reached the store: %v", again.Scopes)
	}
	if err := s.UpdateClient(ctx, "c", func(c storage.Client) (storage.Client, error) {
		c.Scopes = []string{"openid", "profile"}
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetClient(ctx, "c"); len(got.Scopes) != 2 {
		t.Errorf("after an update: %v, want the new scopes", got.Scopes)
	}
	if err := s.DeleteClient(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClient(ctx, "c"); err == nil {
		t.Error("a deleted client is still found")
	}
}
