package pgwire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Backoff between failed accepts, as net/http does: a listener out of file
// descriptors (EMFILE) must wait for some to be freed, not die.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// acceptLoop hands each accepted connection to handle until ctx ends. It
// never gives up on an accept error: it logs it and retries after a
// backoff (5 ms doubling to 1 s, reset by the next success). Only a
// listener closed while ctx is still live ends it with an error, since no
// retry can bring that back.
func acceptLoop(ctx context.Context, ln net.Listener, log *slog.Logger, handle func(net.Conn)) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err == nil {
			delay = 0
			handle(c)
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("accept PostgreSQL client on %s: %w", ln.Addr(), err)
		}
		delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
		log.Warn("accepting a PostgreSQL client failed; retrying", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
