package migrate

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/dualwrite"
	"github.com/redisplit/redisplit/dualwrite/client"
	"github.com/redisplit/redisplit/rollback"
	"github.com/redisplit/redisplit/safety"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// The transitions migrate --dual-write performs for cutover, complete and
// rollback (control.go hands them over). Ordering contracts, per bucket:
//
//   - cutover: preconditions (syncing or verified, caught up with lag
//     below MaxLag, a parity verify younger than MaxVerifyAge; for the
//     queue bucket, unless ConsumersStopped, no list popped on legacy for
//     Quiet, waited for at most Quiet: waitNoPops), then the
//     intent recorded (state.Bucket.Transition), the target's notifications
//     set and the reverse mirror started (window.go), then the control key
//     written (client.SetPhase: the application switches), then phase
//     cutover recorded and the intent cleared.
//   - complete: only from cutover; once no application write of the bucket
//     has reached legacy for Quiet (a forward copy actually written, not an
//     echo), the intent is recorded, both mirrors stop for the bucket (the
//     forward one writes none of its keys any more, the reverse one is
//     flushed and closed, the target's notifications put back), phase
//     completed is recorded, the control key written, and with Purge the
//     bucket's keys deleted from legacy (dualwrite.Purge); then the intent
//     is cleared. When no bucket is mirrored any more the live phase ends
//     (legacy's notifications are put back, migrate exits 0).
//   - rollback (after cutover): the intent, the control key set to
//     rolled-back first (legacy authoritative), the forward mirror stops
//     writing the bucket's target, the reverse mirror is drained
//     (window.drain: catch-up proven) and closed, then the target is
//     rolled back as before cutover (rollback.Run, under migrate's lease).
//   - A migrate started with an intent recorded finishes it (resume): a
//     cutover whose control key was already written (Switched) reopens the
//     window with a reverse rescan; one not yet switched waits for the
//     forward catch-up (legacy was still authoritative) and then switches.
//     A bucket in cutover is never rescanned forward: gaps and restarts
//     heal from the target (window.go contract 4).

// cutoverSteps are the steps of a cutover, in order (for --dry-run).
func cutoverSteps(b string) []string {
	return []string{
		"record the intent in the state directory (a kill -9 from here on is finished by the next migrate --dual-write)",
		"save and set notify-keyspace-events on every master of the " + b + " target (put back by complete or rollback)",
		"start the reverse mirror " + b + ": target → legacy (change capture on every target master, one copier, loop suppression), the forward mirror stays on: the switch window opens",
		"write phase cutover for " + b + " into the control key " + client.ControlKey + " on legacy and PUBLISH it: Go clients (dualwrite/client) switch within their poll interval",
		"record phase cutover in the state",
		"you: switch the other application instances to the target's connection settings (below); complete once no write reaches legacy any more",
	}
}

// CutoverDetails is the answer to a cutover.
type CutoverDetails struct {
	Bucket       string   `json:"bucket"`
	Steps        []string `json:"steps,omitempty"`
	LagMs        int64    `json:"lag_ms"`
	VerifyAgeSec float64  `json:"verify_age_seconds"`
}

// CompleteDetails is the answer to a complete.
type CompleteDetails struct {
	Bucket string `json:"bucket"`
	// QuietFor is how long no application write had reached legacy.
	QuietFor  time.Duration          `json:"quiet_for_ns"`
	AppWrites int64                  `json:"app_writes_on_legacy"`
	Purge     *dualwrite.PurgeResult `json:"purge,omitempty"`
}

// RollbackDetails is the answer to a rollback after cutover.
type RollbackDetails struct {
	Bucket        string                 `json:"bucket"`
	ReverseCopies int64                  `json:"reverse_copies"`
	Rollback      *rollback.BucketResult `json:"rollback,omitempty"`
	Window        *state.Window          `json:"window,omitempty"`
}

// handle performs one request of the control channel, one at a time.
func (l *live) handle(ctx context.Context, req ControlRequest) ControlResponse {
	l.trMu.Lock()
	defer l.trMu.Unlock()
	if q := l.o.queue; q != nil && req.Bucket == q.Bucket { // moved to SQS, not mirrored (queue.go)
		return q.Control(ctx, req, l.o)
	}
	lb := l.bk[req.Bucket]
	if lb == nil {
		var names []string
		for n := range l.bk {
			names = append(names, n)
		}
		sort.Strings(names)
		return respond("", nil, safety.Refusef("name a bucket this migrate mirrors: "+fmt.Sprint(names),
			"bucket %q is not mirrored by this migrate --dual-write (no target configured, or not one of cache, session, queue, ratelimit)", req.Bucket))
	}
	switch req.Op {
	case OpCutover:
		d, err := l.cutover(ctx, lb, req.Options)
		msg := fmt.Sprintf("%s cut over: the target is authoritative; the reverse mirror (target → legacy) runs beside the forward one until complete or rollback", req.Bucket)
		if req.Options.DryRun {
			msg = fmt.Sprintf("%s: every precondition of cutover holds (dry run: nothing changed)", req.Bucket)
		}
		return respond(msg, d, err)
	case OpComplete:
		d, err := l.complete(ctx, lb, req.Options)
		return respond(fmt.Sprintf("%s completed: both mirrors stopped, the application uses the target only", req.Bucket), d, err)
	case OpRollback:
		d, err := l.rollbackCut(ctx, lb, req.Options)
		return respond(fmt.Sprintf("%s rolled back after cutover: legacy is authoritative and holds every write made on the target; the target holds none of redisplit's keys", req.Bucket), d, err)
	}
	return ControlResponse{ExitCode: 2, Message: fmt.Sprintf("unknown operation %q (cutover, complete, rollback)", req.Op)}
}

func (l *live) bucketState(name string) (*state.State, *state.Bucket, error) {
	st, err := l.o.State.Load()
	if err != nil {
		return nil, nil, err
	}
	sb := st.Buckets[name]
	if sb == nil {
		return nil, nil, fmt.Errorf("bucket %s has no state", name)
	}
	return st, sb, nil
}

// setTransition records (t non-nil) or clears the bucket's intent, with
// fn's other changes.
func (l *live) setTransition(name string, t *state.Transition, fn func(*state.Bucket)) error {
	return l.o.State.Update(func(s *state.State) error {
		sb := s.Buckets[name]
		if sb == nil {
			return fmt.Errorf("bucket %s has no state", name)
		}
		sb.Transition = t
		if fn != nil {
			fn(sb)
		}
		return nil
	})
}

// holdForTests pauses a transition after its intent is recorded, for the
// kill -9 tests (REDISPLIT_TEST_TRANSITION_HOLD, a duration).
func holdForTests(ctx context.Context) {
	d, err := time.ParseDuration(os.Getenv("REDISPLIT_TEST_TRANSITION_HOLD"))
	if err != nil || d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// cutoverCheck refuses a cutover whose preconditions do not hold.
func (l *live) cutoverCheck(st *state.State, sb *state.Bucket, lb *liveBucket, o ControlOptions) (*CutoverDetails, error) {
	name := lb.b.name
	if o.MaxLag <= 0 {
		o.MaxLag = DefaultMaxLag
	}
	if o.MaxVerifyAge <= 0 {
		o.MaxVerifyAge = DefaultMaxVerifyAge
	}
	d := &CutoverDetails{Bucket: name}
	switch {
	case sb.Failed:
		return nil, safety.Refusef("fix the cause and rerun migrate --dual-write until the bucket is syncing again",
			"bucket %s failed (%s): cutover needs it syncing", name, sb.LastError)
	case sb.Phase != state.Syncing && sb.Phase != state.Verified:
		return nil, safety.Refusef("cutover needs the bucket syncing (caught up under migrate --dual-write) or verified",
			"bucket %s is %s", name, sb.Phase)
	}
	l.mu.Lock()
	caught, lag, pending, down := lb.caughtUp, lb.lagMs, lb.done < lb.gen, l.feedDown
	l.mu.Unlock()
	d.LagMs = lag
	switch {
	case !caught || pending || down != "":
		why := "no catch-up proven since the last gap"
		if pending {
			why = "a rescan is pending"
		}
		if down != "" {
			why = "the change feed is down: " + down
		}
		return nil, safety.Refusef("wait until it is caught up (redisplit status --wait-caught-up), then run cutover again",
			"bucket %s is not caught up with legacy (%s)", name, why)
	case time.Duration(lag)*time.Millisecond > o.MaxLag:
		return nil, safety.Refusef("wait for a quieter moment, or raise --max-lag",
			"bucket %s lags %d ms behind legacy, above --max-lag %s", name, lag, o.MaxLag)
	}
	v := st.LastVerify
	var vc state.VerifyCounts
	ok := false
	if v != nil {
		vc, ok = v.Buckets[name]
	}
	switch {
	case !ok:
		return nil, safety.Refusef("run redisplit verify (it must find parity) and cutover within --max-verify-age of it",
			"bucket %s has no verify on record", name)
	case vc.RolledBack || vc.Missing+vc.Extra+vc.Type+vc.Value+vc.TTL > 0:
		return nil, safety.Refusef("run redisplit verify again until it finds parity, then cutover",
			"the last verify of bucket %s (%s) found differences: missing %d, extra %d, type %d, value %d, ttl %d",
			name, v.At.Format(time.RFC3339), vc.Missing, vc.Extra, vc.Type, vc.Value, vc.TTL)
	case time.Since(v.At) > o.MaxVerifyAge:
		return nil, safety.Refusef("run redisplit verify again (or raise --max-verify-age), then cutover",
			"the last verify of bucket %s is %s old, older than --max-verify-age %s", name, time.Since(v.At).Round(time.Second), o.MaxVerifyAge)
	}
	d.VerifyAgeSec = time.Since(v.At).Seconds()
	return d, nil
}

func (l *live) cutover(ctx context.Context, lb *liveBucket, o ControlOptions) (*CutoverDetails, error) {
	name := lb.b.name
	st, sb, err := l.bucketState(name)
	if err != nil {
		return nil, err
	}
	if sb.Phase == state.Cutover && sb.Transition == nil {
		return &CutoverDetails{Bucket: name}, nil // done already: idempotent
	}
	if sb.Transition != nil {
		return nil, safety.Refusef("wait until it is done (this migrate finishes it), then retry",
			"bucket %s has a %s in progress (since %s)", name, sb.Transition.Op, sb.Transition.At.Format(time.RFC3339))
	}
	d, err := l.cutoverCheck(st, sb, lb, o)
	if err != nil {
		return nil, err
	}
	if name == "queue" && !o.ConsumersStopped {
		if err := l.waitNoPops(ctx, name, o.Quiet); err != nil {
			return nil, err
		}
	}
	d.Steps = cutoverSteps(name)
	if o.DryRun {
		return d, nil
	}
	if err := l.setTransition(name, &state.Transition{Op: OpCutover, At: time.Now().UTC()}, nil); err != nil {
		return nil, err
	}
	holdForTests(ctx)
	return d, l.finishCutover(ctx, lb, false)
}

// waitNoPops waits until no list of the queue bucket has been popped on
// legacy for quiet (dualwrite.PopWatch: the change feed's pops), at most
// quiet from now, and refuses otherwise naming the lists: a consumer still
// works on legacy.
func (l *live) waitNoPops(ctx context.Context, name string, quiet time.Duration) error {
	if quiet <= 0 {
		quiet = DefaultQuiet
	}
	deadline := time.Now().Add(quiet)
	for {
		now := time.Now()
		c, short := l.pops.Live(now, quiet)
		switch {
		case c == nil && !short:
			return nil
		case now.After(deadline) && short:
			return safety.Refusef("wait until it has, or pass --consumers-stopped once the consumers on legacy are stopped",
				"the change feed has not watched legacy's lists of bucket %s for --quiet %s yet (since %s): a consumer popping there could not be seen", name, quiet, l.start.Format(time.RFC3339))
		case now.After(deadline):
			return dualwrite.ConsumersRefusal(name, []dualwrite.Consumers{*c})
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// finishCutover is the cutover after its intent: the window, the control
// key, the phase. rescan: the window opens with a reverse rescan.
func (l *live) finishCutover(ctx context.Context, lb *liveBucket, rescan bool) error {
	name := lb.b.name
	if _, err := l.openWindow(ctx, lb, rescan); err != nil {
		return fmt.Errorf("cutover %s: starting the reverse mirror: %w (the intent stays recorded: fix the cause and run cutover again, or rerun migrate)", name, err)
	}
	lb.cut.Store(true)
	if _, err := client.SetPhase(ctx, l.r.legacy, name, state.Cutover, l.o.PlanHash, time.Now()); err != nil {
		return fmt.Errorf("cutover %s: %w (the reverse mirror runs; run cutover again)", name, err)
	}
	return l.setTransition(name, nil, func(sb *state.Bucket) {
		sb.Phase = state.Cutover
		if sb.CutoverAt.IsZero() {
			sb.CutoverAt = time.Now().UTC()
		}
	})
}

// stopForward makes the forward mirror write none of the bucket's keys any
// more and waits until the copies in flight are done.
func (l *live) stopForward(ctx context.Context, lb *liveBucket) {
	lb.off.Store(true)
	fctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	_ = l.r.cp.Flush(fctx)
}

func (l *live) complete(ctx context.Context, lb *liveBucket, o ControlOptions) (*CompleteDetails, error) {
	name := lb.b.name
	_, sb, err := l.bucketState(name)
	if err != nil {
		return nil, err
	}
	if sb.Phase == state.Completed && sb.Transition == nil {
		return &CompleteDetails{Bucket: name}, nil
	}
	if sb.Phase != state.Cutover || sb.Transition != nil {
		return nil, safety.Refusef("complete ends the switch window of a bucket that is cut over: run cutover first",
			"bucket %s is %s%s", name, sb.Phase, map[bool]string{true: " with a transition in progress", false: ""}[sb.Transition != nil])
	}
	w := lb.win.Load()
	if w == nil {
		return nil, safety.Refusef("wait a moment (migrate is reopening it after a restart) and retry",
			"the reverse mirror of bucket %s is not running", name)
	}
	if o.Quiet <= 0 {
		o.Quiet = DefaultQuiet
	}
	if o.Timeout <= 0 {
		o.Timeout = 3*o.Quiet + 30*time.Second
	}
	start := time.Now()
	d := &CompleteDetails{Bucket: name}
	for {
		last := w.since
		if sb.CutoverAt.After(last) {
			last = sb.CutoverAt
		}
		if t := w.lastApp.Load(); t > 0 && time.Unix(0, t).After(last) {
			last = time.Unix(0, t)
		}
		quiet := time.Since(last)
		if quiet >= o.Quiet {
			d.QuietFor, d.AppWrites = quiet, w.appWrites.Load()
			break
		}
		if time.Since(start) > o.Timeout {
			return nil, safety.Refusef("some application instances still write legacy for this bucket: finish switching them to the target, then run complete again",
				"application writes of bucket %s keep reaching legacy: the last %s ago (%d since the window opened), no quiet period of %s within %s",
				name, quiet.Round(time.Millisecond), w.appWrites.Load(), o.Quiet, o.Timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := l.setTransition(name, &state.Transition{Op: OpComplete, At: time.Now().UTC(), Purge: o.Purge}, nil); err != nil {
		return nil, err
	}
	holdForTests(ctx)
	return d, l.finishComplete(ctx, lb, o, d)
}

func (l *live) finishComplete(ctx context.Context, lb *liveBucket, o ControlOptions, d *CompleteDetails) error {
	name := lb.b.name
	l.stopForward(ctx, lb)
	if w := lb.win.Load(); w != nil {
		w.close(ctx)
	}
	if err := l.o.State.Update(func(s *state.State) error {
		if sb := s.Buckets[name]; sb != nil {
			sb.Phase, sb.CompletedAt = state.Completed, time.Now().UTC()
		}
		return nil
	}); err != nil {
		return err
	}
	if _, err := client.SetPhase(ctx, l.r.legacy, name, state.Completed, l.o.PlanHash, time.Now()); err != nil {
		return fmt.Errorf("complete %s: %w (rerun migrate --dual-write: it finishes the transition)", name, err)
	}
	if o.Purge {
		pr, err := dualwrite.Purge(ctx, l.r.legacy, l.belongsTo(name), dualwrite.PurgeOptions{OwnPrefix: OwnPrefix, MaxOps: o.PurgeMaxOps})
		d.Purge = &pr
		if err != nil {
			return fmt.Errorf("complete %s: purging legacy after %d keys deleted: %w (rerun migrate --dual-write, or complete --purge-legacy again, to finish)", name, pr.Deleted, err)
		}
	}
	return l.setTransition(name, nil, nil)
}

// belongsTo is the plan's routing of a legacy key to bucket name.
func (l *live) belongsTo(name string) dualwrite.Belongs {
	return Belongs(l.r.rt.c, l.r.rt.unknown, name)
}

func (l *live) rollbackCut(ctx context.Context, lb *liveBucket, o ControlOptions) (*RollbackDetails, error) {
	name := lb.b.name
	_, sb, err := l.bucketState(name)
	if err != nil {
		return nil, err
	}
	if sb.Phase != state.Cutover && (sb.Transition == nil || sb.Transition.Op != OpRollback) {
		return nil, safety.Refusef("before cutover, stop migrate --dual-write (SIGINT) and run rollback: it deletes what redisplit wrote",
			"bucket %s is %s, not cut over: migrate --dual-write rolls back only buckets past cutover", name, sb.Phase)
	}
	if o.DryRun {
		return &RollbackDetails{Bucket: name}, nil
	}
	if err := l.setTransition(name, &state.Transition{Op: OpRollback, At: time.Now().UTC()}, nil); err != nil {
		return nil, err
	}
	holdForTests(ctx)
	return l.finishRollback(ctx, lb)
}

func (l *live) finishRollback(ctx context.Context, lb *liveBucket) (*RollbackDetails, error) {
	name := lb.b.name
	if _, err := client.SetPhase(ctx, l.r.legacy, name, state.RolledBack, l.o.PlanHash, time.Now()); err != nil {
		return nil, err
	}
	if err := l.setTransition(name, &state.Transition{Op: OpRollback, At: time.Now().UTC(), Switched: true}, nil); err != nil {
		return nil, err
	}
	l.stopForward(ctx, lb)
	w := lb.win.Load()
	if w == nil { // resumed: the window reopens with a reverse rescan
		var err error
		if w, err = l.openWindow(ctx, lb, true); err != nil {
			return nil, err
		}
	}
	if err := w.drain(ctx); err != nil {
		return nil, fmt.Errorf("rollback %s: %w (nothing deleted; legacy is authoritative; rerun rollback)", name, err)
	}
	d := &RollbackDetails{Bucket: name, Window: w.stats()}
	d.ReverseCopies = d.Window.ReverseCopies
	w.close(ctx)
	res, err := rollback.Run(ctx, rollback.Options{State: l.o.State, Legacy: l.r.legacy, PlanHash: l.o.PlanHash,
		Targets: map[string]*store.Redis{name: lb.b.t}, Retry: l.o.Retry, Held: true,
		Reverse: func(context.Context, string) error { return nil }}, []string{name})
	if err != nil {
		return nil, err
	}
	if len(res.Buckets) == 1 {
		d.Rollback = &res.Buckets[0]
	}
	return d, nil
}

// resume finishes the transitions a killed migrate left recorded, and
// reopens the windows of the buckets in cutover (contract above).
func (l *live) resume(ctx context.Context, st *state.State) {
	var names []string
	for n := range l.bk {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sb, lb := st.Buckets[n], l.bk[n]
		if sb == nil {
			continue
		}
		var err error
		l.trMu.Lock()
		switch t := sb.Transition; {
		case t == nil && sb.Phase == state.Cutover:
			_, err = l.openWindow(ctx, lb, true)
		case t == nil:
		case t.Op == OpCutover && t.Switched:
			err = l.finishCutover(ctx, lb, true)
		case t.Op == OpCutover:
			l.note(LiveResumed, n, fmt.Sprintf("finishing the cutover of %s a killed migrate left half done: waiting for the forward catch-up first (legacy is still authoritative)", n))
			if err = l.waitCaughtUp(ctx, lb); err == nil {
				err = l.finishCutover(ctx, lb, false)
			}
		case t.Op == OpComplete:
			l.note(LiveResumed, n, "finishing the complete of "+n+" a killed migrate left half done")
			if _, err = l.openWindow(ctx, lb, false); err == nil {
				err = l.finishComplete(ctx, lb, ControlOptions{Purge: t.Purge}, &CompleteDetails{Bucket: n})
			}
		case t.Op == OpRollback:
			l.note(LiveResumed, n, "finishing the rollback of "+n+" a killed migrate left half done")
			_, err = l.finishRollback(ctx, lb)
		}
		l.trMu.Unlock()
		if err != nil && ctx.Err() == nil {
			l.note(LiveGap, n, fmt.Sprintf("could not finish the transition of %s: %v", n, err))
		}
	}
	l.endIfIdle()
}

// waitCaughtUp waits until lb proved catch-up with no rescan pending.
func (l *live) waitCaughtUp(ctx context.Context, lb *liveBucket) error {
	for {
		l.mu.Lock()
		ok := lb.caughtUp && lb.done >= lb.gen
		l.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// endIfIdle ends the live phase when no bucket is mirrored any more
// (every one completed or rolled back): exit 0, notifications put back.
func (l *live) endIfIdle() {
	for _, lb := range l.bk {
		if !lb.off.Load() {
			return
		}
	}
	if !l.o.queue.Ended() { // the queue bucket's move to SQS (queue.go)
		return
	}
	l.note(LiveRescanned, "", "every bucket is completed or rolled back: the live phase ends")
	l.fail(nil)
}

// Belongs is the plan's routing of a key to bucket (the run's router): for
// commands that act on one bucket's keys outside a run (rollback's reverse
// sync, purge).
func Belongs(c *classify.Classifier, unknown, bucket string) dualwrite.Belongs {
	rt := router{c: c, unknown: unknown}
	return func(key, typ string) bool {
		b, _ := rt.route(key, typ)
		return b == bucket
	}
}
