package rollback

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/copier"
	"github.com/redisplit/redisplit/dualwrite"
	"github.com/redisplit/redisplit/dualwrite/client"
	"github.com/redisplit/redisplit/lease"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// Rollback after cutover. Ordering contract, per bucket:
//
//  1. The control key is set to rolled-back first (client.SetPhase): the
//     application's instances return to legacy for the bucket, legacy is
//     authoritative again.
//  2. Then the reverse direction is drained (Options.Reverse): without a
//     running migrate, ReverseSync copies every key of the bucket on the
//     target to legacy where it differs and deletes from legacy the keys
//     of the bucket the target no longer has; legacy then holds every
//     write made on the target since cutover.
//  3. Only then is the target rolled back as before cutover: the keys of
//     the bucket's journal are deleted (the reverse direction journals the
//     keys it copies, so keys the application created on the target after
//     cutover are deleted too), and the bucket is marked rolled-back.

// returnToLegacy is steps 1 and 2 for bucket b.
func returnToLegacy(ctx context.Context, o Options, b string) error {
	if _, err := client.SetPhase(ctx, o.Legacy, b, state.RolledBack, o.PlanHash, time.Now()); err != nil {
		return err
	}
	if err := o.State.Update(func(s *state.State) error {
		if sb := s.Buckets[b]; sb != nil {
			sb.Transition = &state.Transition{Op: "rollback", At: time.Now().UTC(), Switched: true}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := o.Reverse(ctx, b); err != nil {
		return fmt.Errorf("rollback %s: draining the reverse direction (target → legacy): %w; nothing was deleted, rerun rollback", b, err)
	}
	return restoreTargetNotify(ctx, o, b)
}

// restoreTargetNotify puts back the target masters' notify-keyspace-events
// a reverse mirror left set (a migrate killed in the window), as the state
// records them, before the record goes with the bucket's reset. A value
// changed by someone else since is left alone.
func restoreTargetNotify(ctx context.Context, o Options, b string) error {
	st, err := o.State.Load()
	if err != nil {
		return err
	}
	sb := st.Buckets[b]
	if sb == nil || len(sb.TargetNotify) == 0 {
		return nil
	}
	t := o.Targets[b]
	var mu sync.Mutex
	return t.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		label := c.Options().Addr
		if t.Kind == config.KindSentinel {
			label = "sentinel-master" // as migrate records it
		}
		mu.Lock()
		rec := sb.TargetNotify[label]
		mu.Unlock()
		if rec == nil {
			return nil
		}
		err := dualwrite.RestoreNotifications(ctx, c, dualwrite.NotifySetting{Old: rec.Old, Known: rec.Known, Set: rec.Set, Probed: rec.Probed})
		if err != nil && !errors.Is(err, dualwrite.ErrNotifyChanged) {
			return fmt.Errorf("target %s (%s): putting notify-keyspace-events back to %q: %w", b, label, rec.Old, err)
		}
		return nil
	})
}

// ReverseOptions configure ReverseSync.
type ReverseOptions struct {
	State   *state.Dir
	Bucket  string
	Target  *store.Redis  // the bucket's target: authoritative
	Legacy  *redis.Client // for the comparison and the SCAN of legacy
	Sink    *store.Redis  // legacy, as the bucket's sink
	Belongs dualwrite.Belongs
	Retry   store.Retry
}

// ReverseSyncResult counts a ReverseSync.
type ReverseSyncResult struct {
	Copied     int64 `json:"copied"`     // written to or deleted from legacy
	Suppressed int64 `json:"suppressed"` // already equal on legacy
}

// ReverseSync is the reverse direction without a running migrate (step 2
// of the contract above): a reverse rescan through a copier whose source
// is the target and whose sink is legacy, journaling every key it copies
// into the bucket's journal.
func ReverseSync(ctx context.Context, o ReverseOptions) (ReverseSyncResult, error) {
	var res ReverseSyncResult
	j, err := o.State.OpenJournal(o.Bucket)
	if err != nil {
		return res, err
	}
	defer j.Close()
	sup := &dualwrite.Suppressor{Src: o.Target.Client, Dst: o.Legacy}
	cb := &copier.Bucket{Name: o.Bucket + " (reverse)", Sink: o.Sink, Retry: o.Retry, Admit: sup.Admit,
		Journal: func(keys []string) error { _, err := j.Append(keys...); return err }}
	one := []*copier.Bucket{cb}
	cp, err := copier.New(ctx, copier.Config{
		Source: &dualwrite.ServerSource{Client: o.Target.Client, Name: "target " + o.Bucket + " " + o.Target.Describe(), Retry: o.Retry},
		Route: func(key, typ string) []*copier.Bucket {
			if o.Belongs(key, typ) {
				return one
			}
			return nil
		},
		Workers: 2, Batch: 64,
	})
	if err != nil {
		return res, err
	}
	defer cp.Close()
	var masters []*redis.Client
	var mu sync.Mutex
	if err := o.Target.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock() // ForEachMaster runs concurrently on a cluster
		defer mu.Unlock()
		masters = append(masters, c)
		return nil
	}); err != nil {
		return res, err
	}
	if err := dualwrite.ReverseRescan(ctx, cp.Producer("reverse-rescan"), masters, o.Legacy, o.Belongs, lease.OwnPrefix, 1000, 4096); err != nil {
		return res, err
	}
	if err := j.Sync(); err != nil {
		return res, err
	}
	if err := cb.Err(); err != nil {
		return res, fmt.Errorf("writing legacy: %w", err)
	}
	st := cb.Stats()
	res.Copied, res.Suppressed = st.Written+st.Deleted, sup.Suppressed()
	return res, nil
}
