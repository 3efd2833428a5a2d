package clientspec

import (
	"strconv"
	"strings"
	"time"
)

// RateLimit is a client's limit on token endpoint requests: Requests
// requests at once, refilled at Requests per Per (a token bucket).
type RateLimit struct {
	Requests int
	Per      time.Duration
}

// Bounds of a rate limit.
const (
	maxRateRequests = 1_000_000
	minRatePer      = time.Second
	maxRatePer      = 24 * time.Hour
)

var rateUnits = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "second": time.Second,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute,
	"h": time.Hour, "hour": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour,
}

// ParseRateLimit reads a rate_limit: "100/m" is 100 requests a minute
// (units s, m, h, d), "20/10s" 20 every ten seconds (a duration). The
// empty string is no limit (zero RateLimit). A problem is a *FieldError
// of rate_limit.
func ParseRateLimit(s string) (RateLimit, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return RateLimit{}, nil
	}
	bad := func() (RateLimit, error) {
		return RateLimit{}, badField("rate_limit", "%q must look like 100/m: requests per s, m, h or d, or per a duration like 10s", s)
	}
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return bad()
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil {
		return bad()
	}
	per = strings.TrimSpace(per)
	d, ok := rateUnits[per]
	if !ok {
		if d, err = time.ParseDuration(per); err != nil {
			return bad()
		}
	}
	switch {
	case count < 1 || count > maxRateRequests:
		return RateLimit{}, badField("rate_limit", "%q: the number of requests must be between 1 and %d", s, maxRateRequests)
	case d < minRatePer || d > maxRatePer:
		return RateLimit{}, badField("rate_limit", "%q: the period must be between %s and %s", s, minRatePer, maxRatePer)
	}
	return RateLimit{Requests: count, Per: d}, nil
}
