package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// shutdownTimeout bounds the drain at SIGTERM or SIGINT: the listeners
// close at once (new connections are refused), requests in flight get this
// long to finish, and whatever still runs after it is cut. Only then is
// the database closed.
const shutdownTimeout = 10 * time.Second

// drain stops the servers together: each refuses new connections, closes
// its idle ones and waits for its requests in flight, within
// shutdownTimeout in all.
func drain(ctx context.Context, log *slog.Logger, servers ...*http.Server) {
	log.Info("shutting down: finishing requests in flight", "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			if err := s.Shutdown(sctx); err != nil {
				log.Warn("shutting down: requests still running were cut", "timeout", shutdownTimeout.String(), "err", err)
				s.Close()
			}
		})
	}
	wg.Wait()
}
