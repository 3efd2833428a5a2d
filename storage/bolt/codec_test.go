package bolt

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

func TestKeyRoundTripAndPrefixes(t *testing.T) {
	t.Parallel()
	for _, parts := range [][]string{
		{"u1", "c1"},
		{"", ""},
		{"a\x00b", "c"},
		{string(bytes.Repeat([]byte("x"), 300)), "y"},
	} {
		got, err := splitKey(key(parts...))
		if err != nil || !slices.Equal(got, parts) {
			t.Errorf("splitKey(key(%q)) = %q, %v", parts, got, err)
		}
	}
	if bytes.Equal(key("a", "b\x00c"), key("a\x00b", "c")) {
		t.Error("parts containing NUL run into each other")
	}
	for _, tc := range []struct{ prefix, k []string }{
		{[]string{"u1"}, []string{"u10", "c1"}},
		{[]string{"u10"}, []string{"u1", "0c1"}},
		{[]string{"code", "r1"}, []string{"code", "r10", "sig"}},
	} {
		if bytes.HasPrefix(key(tc.k...), key(tc.prefix...)) {
			t.Errorf("key(%q) matches the prefix scan for %q", tc.k, tc.prefix)
		}
	}
	if _, err := splitKey([]byte{5, 'a'}); err == nil {
		t.Error("splitKey of a truncated key: got no error")
	}
}

func TestExpiryKeysSortByTime(t *testing.T) {
	t.Parallel()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ordered := [][]byte{
		expiryKey(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), familyJTI, "z"),
		expiryKey(base, familyToken, "refresh", "zzz"),
		expiryKey(base.Add(time.Nanosecond), familyConsent, "a", "a"),
		expiryKey(base.Add(time.Hour), familyJTI, "a"),
		expiryKey(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), familyJTI, "a"),
	}
	if !slices.IsSortedFunc(ordered, bytes.Compare) {
		t.Error("expiry keys do not sort by time")
	}
}
