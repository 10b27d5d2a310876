package sessions

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// hotProbeEvery spaces the requests that probe a failed hot backend: while
// Redis is down, one request a second per node may wait HotTimeout on it,
// the others go straight to the durable backend.
const hotProbeEvery = time.Second

// hotBreaker keeps requests from waiting on a hot backend that has just
// failed (go-redis spends over a second per command on a dead server,
// retrying dials). After a failure it is open: hot calls fail at once with
// errHotOpen, except one probe at a time every hotProbeEvery on the Store's
// clock, and Run's probe on every tick (which also works on a frozen test
// clock). Any success closes it.
type hotBreaker struct {
	open    atomic.Bool
	since   atomic.Int64 // Store clock, unix ns, of the last failure or probe
	probing atomic.Bool
}

// hotDo runs op on the hot backend under HotTimeout and the breaker.
// ErrNotFound is an answer, not a failure; a call the caller itself
// cancelled says nothing about the backend.
func (s *Store) hotDo(ctx context.Context, op func(context.Context) error) error {
	b := &s.breaker
	if b.open.Load() {
		now := s.cfg.Now().UnixNano()
		if now-b.since.Load() < int64(hotProbeEvery) || !b.probing.CompareAndSwap(false, true) {
			s.hotFail.Add(1)
			return errHotOpen
		}
		b.since.Store(now)
		defer b.probing.Store(false)
	}
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HotTimeout)
	defer cancel()
	err := op(hctx)
	switch {
	case err == nil || errors.Is(err, ErrNotFound):
		if b.open.CompareAndSwap(true, false) {
			s.log.Info("hot session backend is back")
		}
	case ctx.Err() == nil:
		s.hotFail.Add(1)
		b.since.Store(s.cfg.Now().UnixNano())
		if b.open.CompareAndSwap(false, true) {
			s.log.Warn("hot session backend failed; serving from the durable one", "err", err)
		}
	}
	return err
}

// probeHot is Run's probe of an open breaker.
func (s *Store) probeHot(ctx context.Context) {
	if !s.breaker.open.Load() || !s.breaker.probing.CompareAndSwap(false, true) {
		return
	}
	defer s.breaker.probing.Store(false)
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HotTimeout)
	defer cancel()
	if s.hot.Ping(hctx) == nil && s.breaker.open.CompareAndSwap(true, false) {
		s.log.Info("hot session backend is back")
	}
}
