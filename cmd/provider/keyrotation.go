package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/provider/audit"
)

// minRotateEvery is the shortest keys.rotate_every: the next key is
// published half a period ahead (keys.NextKeyLead), and relying parties
// need that long to see it.
const minRotateEvery = time.Hour

// rotateKeysInterval is how often the server looks whether a rotation is
// due. A key starts signing at the time in the manifest whatever this
// says; it only bounds how late a next key is published (the lead is
// half an hour at least) and a retirement written down.
const rotateKeysInterval = time.Minute

// rotateKeysOnSchedule runs keys.rotate_every until ctx ends (serve).
// The schedule is in the key manifest, so a restart keeps it, and a
// rotation by hand (provider keys rotate) restarts the count.
// Each key published, and each failure, is recorded in events.
func rotateKeysOnSchedule(ctx context.Context, km *keys.Manager, every time.Duration, log *slog.Logger, events audit.Sink) {
	if every <= 0 {
		return
	}
	check := func() {
		record := func(e audit.Event) {
			e.Time = time.Now().UTC()
			events.Record(ctx, e)
		}
		next, err := km.RotateDue(every)
		if err != nil {
			log.Error("keys: scheduled rotation failed; the active keys keep signing", "err", err)
			record(audit.NextKeyPublished("", "", err))
			return
		}
		for _, k := range next {
			record(audit.NextKeyPublished(k.ID, k.Alg, nil))
		}
	}
	check()
	t := time.NewTicker(rotateKeysInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}
