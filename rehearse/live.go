package rehearse

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/converge"
	"github.com/redisplit/redisplit/loadgen"
	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// The live phase of a rehearsal (Options.Live). Ordering contracts:
//
//  1. The load's long-lived keys are written once (loadgen Prefill) before
//     the snapshot and scan: the backfill copies keys the load then keeps
//     changing.
//  2. migrate --dual-write --yes starts, through the Runner, and the load
//     starts at the same moment: the load writes during migrate's checks,
//     during the backfill and after it, for Live.For.
//  3. Only once the load has stopped: the wait for catch-up (the engine
//     of status --wait-caught-up, with a marker written after the load
//     stopped, so every write of the load is covered), then verify, then
//     the independent comparison (package converge), all while migrate
//     still mirrors.
//  4. With Live.Cutover (and no fault), the cutover flow (cutover.go)
//     runs next, still while migrate mirrors; it completes or rolls back
//     every bucket, so migrate must end by itself (within 30 s). Otherwise
//     migrate is stopped (its context is cancelled, as SIGINT does): it
//     must drain and exit 0. The cutover flow's checks run
//     after that end.
//  5. Without the cutover flow, legacy is snapshotted after the stop,
//     before rollback: after rollback legacy must equal that snapshot (the
//     load changed legacy, so the one from before the migration no longer
//     describes it).

// Live configures the live phase.
type Live struct {
	// For is how long the load writes (default 10 s), at Rate writes per
	// second (default 1000), over Keys long-lived keys (default 2000) plus
	// fresh expiring ones.
	For  time.Duration
	Rate float64
	Keys int
	// CaughtUpTimeout bounds the wait for catch-up (default 60 s).
	CaughtUpTimeout time.Duration
	// WaitCaughtUp is the engine behind `redisplit status --wait-caught-up`:
	// it waits until the migrate --dual-write running with the state
	// directory stateDir has proven catch-up for every bucket it mirrors
	// with a marker written after the call began, and returns the state
	// then; an error after timeout or when ctx ends. Required.
	WaitCaughtUp func(ctx context.Context, stateDir string, timeout time.Duration) (*state.State, error)

	// Cutover, when set, runs the cutover flow (cutover.go) after the
	// comparison, while migrate still mirrors: cutover of every bucket,
	// the application's writes on the targets for AppFor (default 3 s),
	// rollback after cutover of RollbackBucket (default session, else the
	// first bucket), complete --purge-legacy of the others (each waiting
	// for Quiet without application writes on legacy, default 1 s). The
	// rehearsal's rollback of every bucket is then not run.
	Cutover        bool
	AppFor         time.Duration
	Quiet          time.Duration
	RollbackBucket string
}

// Phases of the live flow, in order. PhaseLive names the progress of the
// load and migrate running together; the others are cases.
const (
	PhaseLive         = "live"
	PhaseLiveLoad     = "live/load"
	PhaseLiveCaughtUp = "live/caught-up"
	PhaseLiveVerify   = "live/verify"
	PhaseLiveCompare  = "live/compare"
	PhaseLiveStop     = "live/stop"
)

// LiveFigures are the live phase's figures in a Result.
type LiveFigures struct {
	Load     loadgen.Stats                `json:"load"`
	CaughtUp map[string]*state.LiveBucket `json:"caught_up,omitempty"` // the figures when catch-up was proven
	Migrate  *migrate.LiveResult          `json:"migrate,omitempty"`   // migrate's own summary of the live phase
	Compare  *converge.Result             `json:"compare,omitempty"`
}

func (l *Live) defaults() {
	if l.For <= 0 {
		l.For = 10 * time.Second
	}
	if l.Rate <= 0 {
		l.Rate = 1000
	}
	if l.Keys <= 0 {
		l.Keys = 2000
	}
	if l.CaughtUpTimeout <= 0 {
		l.CaughtUpTimeout = 60 * time.Second
	}
	if l.AppFor <= 0 {
		l.AppFor = 3 * time.Second
	}
	if l.Quiet <= 0 {
		l.Quiet = time.Second
	}
}

// CheckLive returns a *config.Error when the live phase cannot run with
// the user's configuration cfg (nil: zero configuration): the load writes
// database 0, and its keys must not be refused by unknown: block.
func CheckLive(cfg *config.Config) error {
	if db := LegacyDB(cfg); db != 0 {
		return config.Errorf("legacy.url", "the live load writes database 0, the config's legacy is database %d: run with --no-live", db)
	}
	router, _, err := classify.Router(cfg)
	if err != nil {
		return err
	}
	if unknownSetting(cfg) != "block" {
		return nil
	}
	for _, f := range loadgen.Families() {
		if m := router.Classify(f.Example, f.Type); m.Bucket == classify.Unknown || m.Bucket == "" {
			return config.Errorf("unknown", "the live load's key %q (a %s) matches no rule and unknown is block: add a rule for it, set unknown, or run with --no-live", f.Example, f.Type)
		}
	}
	return nil
}

// routeOf routes a key as migrate does: its bucket, the unknown setting's
// bucket for keys no rule matches, or "" (not migrated).
func routeOf(router *classify.Classifier, cfg *config.Config) func(k, typ string) string {
	unknown := unknownSetting(cfg)
	if unknown == "block" || unknown == "skip" {
		unknown = ""
	}
	return func(k, typ string) string {
		if ownKey(k) {
			return ""
		}
		m := router.Classify(k, typ)
		if m.Bucket == classify.Unknown || m.Bucket == "" {
			return unknown
		}
		return string(m.Bucket)
	}
}

// liveRun is what the live flow needs of Run.
type liveRun struct {
	o        Options
	res      *Result
	legacy   *redis.Client
	router   *classify.Classifier
	targets  map[string]redis.UniversalClient
	stateDir string
	gen      *loadgen.Generator
	phase    func(name string) func(ok bool) time.Duration
	start    func(name string, args ...string) (full []string, record func(Output))
	run      func(name string, args ...string) Output
	verify   func(ph string, out Output)
	loseKey  func() error // FaultLoseKey: delete a migrated key from its target
	sqs      *sqsRun      // the queue bucket on SQS (sqs.go), nil otherwise

	// the cutover flow's (cutover.go)
	snap   *Snapshot                  // legacy before the migration
	route  func(k, typ string) string // migrate's routing
	stores map[string]*store.Redis    // the targets, for Empty
	want   map[string]expect          // the application's last write per key
	cut    bool                       // the cutover flow ran: the rehearsal's rollback is not
}

// rawTargets is the store of bucket b, as Empty takes it.
func (lr *liveRun) rawTargets(b string) map[string]*store.Redis {
	return map[string]*store.Redis{b: lr.stores[b]}
}

// live runs the live flow from migrate to its stop (contracts 2 to 4).
func (lr *liveRun) live(ctx context.Context) error {
	lv, res := lr.o.Live, lr.res
	fig := &LiveFigures{}
	res.Live = fig

	end := lr.phase(PhaseLive)
	args := []string{"migrate", "--dual-write", "--yes", "-o", "json"}
	if lr.o.Fault == FaultNoCapture {
		args = []string{"migrate", "--yes", "-o", "json"}
	}
	full, record := lr.start("migrate", args...)
	mctx, stopMigrate := context.WithCancel(ctx)
	var mout Output
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		mout = lr.o.Run(mctx, full)
	}()
	recorded := false
	defer func() { // also on an early return: migrate never outlives the rehearsal's servers
		stopMigrate()
		<-exited
		if !recorded {
			record(mout)
		}
	}()

	if lr.o.Fault == FaultNoCapture {
		// the one pass first, the load after it: every write of the load is
		// one the targets never get
		<-exited
	}
	lctx, stopLoad := context.WithCancel(ctx)
	loaded := make(chan struct{})
	var lerr error
	var qpushed int
	var qerr error
	qdone := make(chan struct{})
	go func() {
		defer close(loaded)
		fig.Load, lerr = lr.gen.Run(lctx, lv.For, 0)
	}()
	go func() { // the queue producer on legacy, as long as the load (sqs.go contract 2)
		defer close(qdone)
		if lr.sqs != nil {
			pctx, cancel := context.WithTimeout(lctx, lv.For)
			defer cancel()
			qpushed, qerr = lr.sqs.produce(pctx)
		}
	}()
	early := false
	select {
	case <-loaded:
	case <-exited:
		if lr.o.Fault != FaultNoCapture { // migrate --dual-write ends only when stopped
			early = true
			stopLoad()
		}
		<-loaded
	}
	stopLoad()
	<-qdone
	if lr.sqs != nil {
		qc := Case{Phase: PhaseQueueLoad, Bucket: lr.sqs.bucket, OK: qerr == nil && (qpushed > 0 || len(lr.sqs.lists) == 0),
			Detail: fmt.Sprintf("%d jobs pushed onto %d lists on legacy while migrate moved them; the consumer on SQS received %d messages meanwhile",
				qpushed, len(lr.sqs.lists), lr.sqs.received.Load())}
		if qerr != nil {
			qc.Detail += "; " + qerr.Error()
		}
		res.add(qc)
	}
	st := fig.Load
	lc := Case{Phase: PhaseLiveLoad, OK: lerr == nil && st.Writes > 0 && st.Errors == 0 && st.ModelErrors == 0, Duration: st.Elapsed,
		Detail: fmt.Sprintf("%d writes applied to legacy in %s (%.0f/s; %s)", st.Writes, st.Elapsed.Round(10*time.Millisecond), st.Rate, byOp(st.ByOp))}
	if st.Errors > 0 || st.ModelErrors > 0 {
		lc.Detail += fmt.Sprintf("; %d failed commands, %d replies the load did not expect (first: %s)", st.Errors, st.ModelErrors, st.FirstError)
	}
	if lerr != nil {
		lc.Detail += "; " + lerr.Error()
	}
	res.add(lc)
	end(lc.OK && !early)

	if early {
		<-exited
		record(mout)
		recorded = true
		res.add(Case{Phase: PhaseLiveStop, OK: false, Duration: mout.Duration,
			Detail: fmt.Sprintf("redisplit migrate --dual-write exited %d while the load was running", mout.Code), Output: tail(mout.Stderr+"\n"+mout.Stdout, 4000)})
		return nil
	}

	// caught up: a marker written after the load stopped has come back
	// through the feed with every change before it applied
	end = lr.phase(PhaseLiveCaughtUp)
	wctx, wcancel := context.WithCancel(ctx)
	go func() {
		select { // waiting for a migrate that has exited is pointless
		case <-exited:
			wcancel()
		case <-wctx.Done():
		}
	}()
	t0 := time.Now()
	cst, err := lv.WaitCaughtUp(wctx, lr.stateDir, lv.CaughtUpTimeout)
	wcancel()
	d := time.Since(t0)
	ok := err == nil
	for _, b := range res.Buckets {
		c := Case{Phase: PhaseLiveCaughtUp, Bucket: b, OK: ok, Duration: d}
		switch {
		case err != nil:
			c.Detail = "not caught up: " + err.Error()
			if ctx.Err() == nil && wctx.Err() != nil && isClosed(exited) {
				c.Detail = fmt.Sprintf("not caught up: migrate exited %d (no --dual-write running)", mout.Code)
			}
		case cst.Live == nil || cst.Live.Buckets[b] == nil:
			c.OK, ok = false, false
			c.Detail = "caught up, but the live phase does not mirror this bucket"
		default:
			lb := cst.Live.Buckets[b]
			if fig.CaughtUp == nil {
				fig.CaughtUp = map[string]*state.LiveBucket{}
			}
			fig.CaughtUp[b] = lb
			c.Detail = fmt.Sprintf("caught up in %s after the load stopped: lag %d ms, backlog %d, %d change events and %d copies so far, %d gaps, %d rescans",
				d.Round(10*time.Millisecond), lb.LagMs, lb.Backlog, lb.Events, lb.Copies, lb.Gaps, lb.Rescans)
		}
		res.add(c)
	}
	end(ok)
	if lr.loseKey != nil {
		if err := lr.loseKey(); err != nil {
			return err
		}
	}

	// verify, while migrate still mirrors
	end = lr.phase(PhaseLiveVerify)
	vargs := []string{"verify", "-o", "json"}
	if lr.sqs != nil { // its conservation is checked once its move is complete (sqs.go)
		for _, b := range res.Buckets {
			vargs = append(vargs, "--bucket", b)
		}
	}
	vout := lr.run("verify-live", vargs...)
	lr.verify(PhaseLiveVerify, vout)
	end(vout.Code == 0)

	// the independent comparison, both ways
	end = lr.phase(PhaseLiveCompare)
	t0 = time.Now()
	route := routeOf(lr.router, lr.o.Config)
	if lr.sqs != nil { // moved, not mirrored: the queue flow checks it (sqs.go)
		mirrored := route
		route = func(k, typ string) string {
			if b := mirrored(k, typ); b != lr.sqs.bucket {
				return b
			}
			return ""
		}
	}
	cmp, err := converge.Compare(ctx, converge.Options{Legacy: lr.legacy, Targets: lr.targets, Route: route, Skip: ownKey})
	if err != nil {
		end(false)
		return fmt.Errorf("compare legacy with the targets: %w", err)
	}
	fig.Compare = cmp
	end(lr.compareCases(cmp, time.Since(t0)))

	// the queue on SQS: producers switched, complete, conservation
	// (sqs.go contracts 3 and 4), with or without the cutover flow
	switch {
	case lr.sqs != nil && lr.o.Fault == FaultNoCapture:
		res.add(Case{Phase: PhaseQueueCutover, Bucket: lr.sqs.bucket, OK: true, Skipped: true,
			Detail: "not run: fault no-capture runs migrate without --dual-write (one pass: no live move to cut over)"})
	case lr.sqs != nil:
		lr.sqs.flow(ctx, lr)
	}

	// the cutover flow, while migrate mirrors; it ends migrate by itself
	// when it completes or rolls back every bucket (and the queue's move
	// on SQS has ended)
	cutOK := false
	if lv.Cutover && lr.o.Fault == "" {
		lr.cut = true
		cutOK = lr.cutover(ctx)
	}

	// stop: SIGINT's path, a drain, exit 0; after the cutover flow migrate
	// must have ended by itself (every bucket completed or rolled back)
	end = lr.phase(PhaseLiveStop)
	byItself := false
	if cutOK {
		select {
		case <-exited:
			byItself = true
		case <-time.After(30 * time.Second):
		case <-ctx.Done():
		}
	}
	stopMigrate()
	<-exited
	record(mout)
	recorded = true
	sc := Case{Phase: PhaseLiveStop, OK: mout.Code == 0 && byItself == cutOK, Duration: mout.Duration}
	var mres migrate.Result
	jerr := json.Unmarshal([]byte(mout.Stdout), &mres)
	switch {
	case cutOK && !byItself:
		sc.Detail = fmt.Sprintf("redisplit migrate --dual-write did not end within 30 s of the last bucket's complete or rollback (exit %d once stopped)", mout.Code)
		sc.Output = tail(mout.Stderr+"\n"+mout.Stdout, 4000)
	case mout.Code != 0:
		sc.Detail = fmt.Sprintf("redisplit migrate --dual-write exited %d when stopped", mout.Code)
		sc.Output = tail(mout.Stderr+"\n"+mout.Stdout, 4000)
	case lr.o.Fault == FaultNoCapture:
		sc.Detail = "migrate (without --dual-write: fault no-capture) exited 0 after its one pass"
	case jerr != nil || mres.Live == nil:
		sc.OK = false
		sc.Detail = fmt.Sprintf("cannot read migrate's live summary: %v", jerr)
		sc.Output = tail(mout.Stdout, 2000)
	default:
		l := mres.Live
		fig.Migrate = l
		how := "stopped, drained"
		if byItself {
			how = "ended by itself once every bucket was completed or rolled back"
		}
		sc.Detail = fmt.Sprintf("%s, exit 0: %d change events, %d copies, %d gaps, %d rescans in %s; %s",
			how, l.Events, l.Copies, len(l.Gaps), l.Rescans, l.StoppedAt.Sub(l.StartedAt).Round(10*time.Millisecond), l.Notify)
	}
	res.add(sc)
	end(sc.OK)
	if cutOK {
		return lr.afterCutover(ctx)
	}
	return nil
}

// compareCases adds one live/compare case per bucket (and one without a
// bucket for keys legacy could not read); it reports whether all passed.
func (lr *liveRun) compareCases(cmp *converge.Result, d time.Duration) bool {
	by := map[string][]converge.Difference{}
	for _, x := range cmp.Differences {
		by[x.Bucket] = append(by[x.Bucket], x)
	}
	all := true
	add := func(b string, c Case) {
		diffs := by[b]
		for i, x := range diffs {
			if i == 5 {
				c.Keys = append(c.Keys, fmt.Sprintf("... %d more", len(diffs)-5))
				break
			}
			c.Keys = append(c.Keys, x.String())
		}
		if len(diffs) > 0 {
			c.OK = false
			c.Detail += fmt.Sprintf(", %d DIFFERENT", len(diffs))
			lr.res.Lost = true
		}
		all = all && c.OK
		lr.res.add(c)
	}
	for _, b := range lr.res.Buckets {
		add(b, Case{Phase: PhaseLiveCompare, Bucket: b, OK: true, Duration: d,
			Detail: fmt.Sprintf("%d legacy keys routed here, %d keys on the target, compared both ways (type, value digest, expiry)", cmp.Routed[b], cmp.OnTarget[b])})
	}
	if len(by[""]) > 0 {
		add("", Case{Phase: PhaseLiveCompare, OK: true, Detail: "legacy keys that could not be read"})
	}
	if cmp.Dropped > 0 {
		lr.res.Lost = true
		all = false
		lr.res.add(Case{Phase: PhaseLiveCompare, OK: false, Detail: fmt.Sprintf("%d more differing keys, not listed", cmp.Dropped)})
	}
	return all
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// byOp renders the load's writes per operation, most first.
func byOp(m map[string]int64) string {
	ops := make([]string, 0, len(m))
	for op := range m {
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b string) int {
		if m[a] != m[b] {
			return int(m[b] - m[a])
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = fmt.Sprintf("%s %d", op, m[op])
	}
	return strings.Join(parts, ", ")
}
