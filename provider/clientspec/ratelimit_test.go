package clientspec_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smallsso/provider/provider/clientspec"
)

func TestParseRateLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want clientspec.RateLimit
	}{
		{"", clientspec.RateLimit{}},
		{"100/m", clientspec.RateLimit{Requests: 100, Per: time.Minute}},
		{" 10 / s ", clientspec.RateLimit{Requests: 10, Per: time.Second}},
		{"1000/hour", clientspec.RateLimit{Requests: 1000, Per: time.Hour}},
		{"5/d", clientspec.RateLimit{Requests: 5, Per: 24 * time.Hour}},
		{"20/10s", clientspec.RateLimit{Requests: 20, Per: 10 * time.Second}},
	} {
		got, err := clientspec.ParseRateLimit(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRateLimit(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"100", "must look like 100/m"},
		{"many/m", "must look like 100/m"},
		{"100/fortnight", "must look like 100/m"},
		{"0/m", "between 1 and"},
		{"-3/m", "between 1 and"},
		{"10/100ms", "period must be between 1s and 24h"},
		{"10/48h", "period must be between 1s and 24h"},
	} {
		_, err := clientspec.ParseRateLimit(tc.in)
		var fe *clientspec.FieldError
		if !errors.As(err, &fe) || fe.Field != "rate_limit" || !strings.Contains(fe.Problem, tc.want) {
			t.Errorf("ParseRateLimit(%q) error %v, want a rate_limit problem saying %q", tc.in, err, tc.want)
		}
	}
}
