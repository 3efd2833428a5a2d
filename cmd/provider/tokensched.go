package main

import (
	"time"

	"github.com/smallsso/provider/provider"
)

// validateSchedules checks the time-based token settings of issue 14:
// tokens.refresh_reuse_grace and keys.rotate_every (keyrotation.go).
func (c *fileConfig) validateSchedules(add func(key, format string, args ...any)) {
	if g := time.Duration(c.Tokens.RefreshReuseGrace); g > provider.MaxRefreshReuseGrace {
		add("tokens.refresh_reuse_grace", "%s is longer than the maximum of %s: the grace is for a client retrying after a dropped answer", g, provider.MaxRefreshReuseGrace)
	}
	if e := time.Duration(c.Keys.RotateEvery); e != 0 && e < minRotateEvery {
		add("keys.rotate_every", "%s is shorter than the minimum of %s (0 turns scheduled rotation off)", e, minRotateEvery)
	}
}
