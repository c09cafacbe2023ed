package client

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
)

// Following the control key. One goroutine reads it (poll), so reads apply
// in the order they were made and a slow read can never undo a newer one;
// the subscription only wakes it. A PUBLISH on ControlChannel, a
// (re)subscription and every PollInterval each cause a read, so a change is
// seen at once when the PUBLISH arrives, and at most PollInterval plus one
// round trip after it was written when it does not (subscriber reconnecting,
// message lost).

func (c *Client) subscribe(ctx context.Context, ps *redis.PubSub) {
	defer c.wg.Done()
	defer ps.Close()
	ch := ps.ChannelWithSubscriptions(redis.WithChannelHealthCheckInterval(c.opts.PollInterval * 5))
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			if _, sub := m.(*redis.Subscription); sub {
				c.subscribd.Store(true)
			}
			c.wake()
		}
	}
}

func (c *Client) wake() {
	select {
	case c.kick <- struct{}{}:
	default: // a read is already due
	}
}

func (c *Client) poll(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		_ = c.refresh(ctx)
	}
}

// refresh reads the control key and installs the routing it says. A field
// that is absent never changes a phase the client holds (a lost or evicted
// control key must not send a cut-over bucket back to legacy; rollback is an
// explicit rolled-back); at start an absent field means legacy. A field that
// cannot be parsed keeps the bucket where it is and is reported.
func (c *Client) refresh(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, c.opts.ControlTimeout)
	defer cancel()
	c.stats.controlReads.Add(1)
	vals, bad, err := ReadControl(rctx, c.legacy.c)
	if err != nil {
		err = fmt.Errorf("redisplit client: reading the control key %s on legacy: %w", ControlKey, err)
		c.controlError(err)
		return err
	}
	old := c.routes.Load()
	next := &routing{buckets: make(map[string]bucketState, len(old.buckets)), read: time.Now()}
	for b, s := range old.buckets {
		next.buckets[b] = s
	}
	for _, b := range config.Buckets {
		if e, ok := bad[b]; ok {
			c.controlError(fmt.Errorf("redisplit client: control key %s field %s: %w; bucket %s stays where it was", ControlKey, b, e, b))
		}
		v, ok := vals[b]
		if !ok {
			continue
		}
		if v.Plan != "" && v.Plan != c.plan.Hash() {
			c.ctlMu.Lock()
			warn := !c.planWarn
			c.planWarn = true
			c.ctlMu.Unlock()
			if warn {
				c.log.Warn("redisplit client: the migration routes with another plan than this application",
					"bucket", b, "tool_plan", v.Plan, "client_plan", c.plan.Hash())
			}
		}
		prev, had := old.buckets[b]
		s := c.newState(b, v)
		next.buckets[b] = s
		if had && prev.st == s.st && prev.Phase == v.Phase {
			continue
		}
		was := c.legacy // a bucket without a field yet is on legacy
		if had {
			was = prev.st
		}
		if was != s.st {
			c.ctlMu.Lock()
			c.switches[b]++
			c.ctlMu.Unlock()
		}
		c.log.Info("redisplit client: bucket phase", "bucket", b, "phase", v.Phase, "epoch", v.Epoch,
			"store", storeName(s), "at", v.At)
	}
	c.routes.Store(next)
	return nil
}

func storeName(s bucketState) string {
	if s.err != nil {
		return "none"
	}
	return s.st.name
}

func (c *Client) controlError(err error) {
	c.stats.controlErrs.Add(1)
	c.ctlMu.Lock()
	repeat := c.lastErr == err.Error() && time.Since(c.errAt) < time.Minute
	c.lastErr = err.Error()
	if !repeat {
		c.errAt = time.Now()
	}
	c.ctlMu.Unlock()
	if !repeat {
		c.log.Warn(err.Error())
	}
}
