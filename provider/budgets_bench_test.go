package provider

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkThrottle is one password check's bookkeeping: reserve, then
// failed or succeeded, over many accounts from a few sources.
func BenchmarkThrottle(b *testing.B) {
	clock := &fixedClock{t: time.Unix(1_800_000_000, 0)}
	th := newThrottle(clock.now)
	users := make([]string, 1000)
	for i := range users {
		users[i] = "user" + strconv.Itoa(i)
	}
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a, _, _ := th.reserve(ctx, users[i%len(users)], "192.0.2."+strconv.Itoa(i%200))
		if a != nil {
			if i%2 == 0 {
				a.failed()
			} else {
				a.succeeded(ctx)
			}
		}
		i++
		if i%1000 == 0 {
			clock.advance(time.Minute)
		}
	}
}

// BenchmarkRegistrationAllow is the registration limiter's check.
func BenchmarkRegistrationAllow(b *testing.B) {
	l := newRegistrationLimiter()
	now := time.Unix(1_800_000_000, 0)
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.allow(ctx, "192.0.2."+strconv.Itoa(i%200), now)
		i++
		if i%100 == 0 {
			now = now.Add(time.Minute)
		}
	}
}

// BenchmarkClientLimits is the token endpoint's rate-limit bookkeeping
// for a client with a limit.
func BenchmarkClientLimits(b *testing.B) {
	clock := &fixedClock{t: time.Unix(1_800_000_000, 0)}
	c := newClientLimits(clock.now)
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := "client" + strconv.Itoa(i%10)
		c.over(id)
		c.take(ctx, id, "1000/s")
		i++
		if i%100 == 0 {
			clock.advance(time.Second)
		}
	}
}
