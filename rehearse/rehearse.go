// Package rehearse runs redisplit's whole flow on a throw-away copy of the
// configured topology, for CI: it starts the legacy server and every target
// on a topology.Backend (containers for `redisplit rehearse`), loads an RDB
// snapshot or a synthetic keyspace into legacy, runs scan → migrate → verify
// → rollback through the real command line, checks after each phase that
// nothing was lost, and returns a Result that renders as Markdown and JUnit
// XML. With Options.Live the migrate phase is the live phase (live.go):
// migrate --dual-write under a live write load against legacy, then
// catch-up, verify and an independent comparison both ways while it still
// mirrors, then (Live.Cutover, cutover.go) cutover of every bucket, the
// application's writes on the targets, rollback after cutover of one
// bucket and complete of the others, then migrate's end.
//
// The commands are run by a Runner that the caller supplies (cmd passes its
// in-process command line), so a rehearsal exercises exactly the code paths
// an operator runs; this package has no second implementation of any phase.
// Besides the commands' own verdicts, the rehearsal checks its own
// postconditions directly on the servers: after migrate every legacy key is
// on its target (or expired by its TTL; in the live flow: every key of
// legacy and of the targets compared both ways); after rollback every
// target is empty and legacy is exactly as it was before rollback (before
// the migration, in the one-pass flow: nothing but the load writes legacy);
// after the cutover flow, the application's writes are where the bucket's
// end put them (cutover.go).
package rehearse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/loadgen"
	"github.com/redisplit/redisplit/scan"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/verify"
)

// Output is what one command of the rehearsal printed and returned.
type Output struct {
	Args     []string      `json:"args"`
	Code     int           `json:"exit_code"`
	Stdout   string        `json:"-"`
	Stderr   string        `json:"-"`
	Duration time.Duration `json:"duration_ns"`
}

// Runner runs one redisplit command line (without the program name) and
// returns its exit code and output. It must honour ctx, and the command
// must see only its arguments and the generated configuration: no
// REDISPLIT_* environment, which belongs to the real legacy and targets.
type Runner func(ctx context.Context, args []string) Output

// Faults a rehearsal can inject, to prove that it fails when it should.
const (
	// FaultLoseKey deletes one key from a target right after migrate (a
	// session key when there is one): verify and the rehearsal's own
	// presence check must both report it, and the rehearsal must fail.
	// In the live flow the key is deleted after catch-up, while migrate
	// still mirrors: the copier does not see it (legacy did not change),
	// and the comparison must report it too.
	FaultLoseKey = "lose-key"
	// FaultNoCapture breaks the mirror at its root (live flow only):
	// migrate runs without --dual-write, a one-pass backfill that follows
	// no change, and the load runs after it: its writes never reach the
	// targets, and the comparison must find them.
	FaultNoCapture = "no-capture"
)

// CheckFault returns a *config.Error unless f is "" or a fault rehearse
// knows for the flow (live or not).
func CheckFault(f string, live bool) error {
	switch {
	case f == "" || f == FaultLoseKey:
	case (f == FaultNoCapture || f == FaultDropQueueItem) && !live:
		return config.Errorf("--fault", "%s breaks the live phase: it cannot be combined with --no-live", f)
	case f != FaultNoCapture && f != FaultDropQueueItem:
		return config.Errorf("--fault", "%q is not a fault rehearse knows (lose-key, no-capture, drop-queue-item)", f)
	}
	return nil
}

// CheckSQS returns a *config.Error when layout l puts a bucket on SQS
// (the in-process emulator) and the flow cannot rehearse it: the queue
// flow on SQS is a live flow (live false: --no-live); fault
// drop-queue-item needs a queue on SQS.
func CheckSQS(l Layout, live bool, fault string) error {
	switch b := l.SQSBucket(); {
	case b != "" && !live:
		return config.Errorf("--no-live", "the %s bucket on SQS is rehearsed in the live flow only (consumers on SQS, producers switched, complete): drop --no-live", b)
	case b == "" && fault == FaultDropQueueItem:
		return config.Errorf("--fault", "drop-queue-item needs the queue bucket on SQS (--queue-target sqs, or a config whose queue target is kind: sqs)")
	}
	return nil
}

// Options configure a rehearsal.
type Options struct {
	Backend topology.Backend // where servers run; the caller closes it
	Layout  Layout           // DefaultLayout() when nil
	// Config is the user's configuration (routing rules, presets, unknown,
	// plan); nil means zero configuration.
	Config *config.Config
	// Exactly one data source: an RDB file, or a synthetic keyspace.
	FromRDB   string
	Synthetic *Synthetic

	// Live, when set, makes the migrate phase the live phase (live.go);
	// nil is the one-pass flow (migrate --yes, then verify).
	Live *Live

	Run   Runner
	Fault string // "", FaultLoseKey, FaultNoCapture or FaultDropQueueItem (SQS)
	// Dir receives the generated configuration, the state directory and
	// every command's output; it must exist.
	Dir string
	// Progress, when set, is told when each phase starts and ends.
	Progress func(phase string, done bool, ok bool, d time.Duration)
}

// Phase names, in order.
const (
	PhaseTopology = "topology"
	PhaseLoad     = "load"
	PhaseScan     = "scan"
	PhaseMigrate  = "migrate"
	PhaseVerify   = "verify"
	PhaseRollback = "rollback"
	PhaseFinal    = "verify-after-rollback"
)

// Case is one test case of the report: one phase for one bucket ("" for
// phases that are not per bucket).
type Case struct {
	Phase    string        `json:"phase"`
	Bucket   string        `json:"bucket,omitempty"`
	OK       bool          `json:"ok"`
	Skipped  bool          `json:"note,omitempty"` // informational (an injected fault), neither pass nor fail
	Detail   string        `json:"detail"`         // one line
	Keys     []string      `json:"keys,omitempty"` // offending keys, quoted
	Output   string        `json:"output,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Result is the outcome of a rehearsal.
type Result struct {
	OK        bool           `json:"ok"`
	Lost      bool           `json:"lost"` // some key was lost or changed (exit 3), as opposed to a phase failing
	Started   time.Time      `json:"started"`
	Duration  time.Duration  `json:"duration_ns"`
	Image     string         `json:"image"`   // set by the caller: the image servers ran from
	Servers   []string       `json:"servers"` // one line per bucket
	Source    string         `json:"source"`  // "synthetic keyspace: N keys (seed S)" or "RDB snapshot PATH"
	Generated *Generated     `json:"generated,omitempty"`
	Buckets   []string       `json:"buckets"`     // buckets with a target, in report order
	Legacy    map[string]int `json:"legacy_keys"` // legacy keys per bucket at the start (unknown included)
	Cases     []Case         `json:"cases"`
	Commands  []Output       `json:"commands"`
	Live      *LiveFigures   `json:"live,omitempty"` // the live flow's figures
	// Queue is the queue flow's figures when the queue bucket is on SQS
	// (sqs.go); Buckets then lists the buckets with a Redis target only.
	Queue *QueueFigures `json:"queue,omitempty"`
}

func (r *Result) add(c Case) {
	r.Cases = append(r.Cases, c)
	if !c.OK && !c.Skipped {
		r.OK = false
	}
}

// Run performs the rehearsal. It returns an error only when the rehearsal
// could not be carried out at all (bad options, servers that would not
// start, data that would not load); a phase that fails is a failed Case and
// Result.OK false.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Run == nil || o.Backend == nil || o.Dir == "" {
		return nil, errors.New("rehearse: Backend, Run and Dir are required")
	}
	if (o.FromRDB == "") == (o.Synthetic == nil) {
		return nil, config.Errorf("--from-rdb/--synthetic", "give exactly one data source: --from-rdb FILE or --synthetic N")
	}
	if err := CheckFault(o.Fault, o.Live != nil); err != nil {
		return nil, err
	}
	if o.Live != nil {
		if o.Live.WaitCaughtUp == nil {
			return nil, errors.New("rehearse: Live.WaitCaughtUp is required")
		}
		if err := CheckLive(o.Config); err != nil {
			return nil, err
		}
		lv := *o.Live
		lv.defaults()
		o.Live = &lv
	}
	if o.Layout == nil {
		o.Layout = DefaultLayout()
	}
	sqsBucket := o.Layout.SQSBucket()
	if err := CheckSQS(o.Layout, o.Live != nil, o.Fault); err != nil {
		return nil, err
	}
	if sqsBucket != "" && o.Synthetic != nil {
		syn := *o.Synthetic
		syn.QueueLists = true // SQS carries list items only
		o.Synthetic = &syn
	}
	router, _, err := classify.Router(o.Config)
	if err != nil {
		return nil, err
	}
	res := &Result{OK: true, Started: time.Now(), Legacy: map[string]int{}}
	defer func() { res.Duration = time.Since(res.Started) }()
	for _, b := range config.Buckets {
		if _, ok := o.Layout[b]; ok && b != sqsBucket {
			res.Buckets = append(res.Buckets, b)
		}
	}
	phase := func(name string) func(ok bool) time.Duration {
		t0 := time.Now()
		if o.Progress != nil {
			o.Progress(name, false, false, 0)
		}
		return func(ok bool) time.Duration {
			d := time.Since(t0)
			if o.Progress != nil {
				o.Progress(name, true, ok, d)
			}
			return d
		}
	}

	// topology
	end := phase(PhaseTopology)
	topo, err := o.Layout.Start(ctx, o.Backend)
	if err != nil {
		end(false)
		return nil, fmt.Errorf("start the ephemeral topology: %w", err)
	}
	defer topo.Close()
	res.Servers = topo.Describe()
	res.add(Case{Phase: PhaseTopology, OK: true, Detail: fmt.Sprintf("%d stores started", len(topo.Targets)+1), Duration: end(true)})

	// load
	end = phase(PhaseLoad)
	legacy := redis.NewClient(&redis.Options{Addr: topo.Legacy.Addr(), DB: LegacyDB(o.Config), DisableIdentity: true,
		ReadTimeout: 30 * time.Second})
	defer legacy.Close()
	if o.Synthetic != nil {
		res.Source = fmt.Sprintf("synthetic keyspace: %d keys (seed %d)", o.Synthetic.Keys, o.Synthetic.Seed)
		g, err := o.Synthetic.Generate(ctx, legacy)
		if err != nil {
			end(false)
			return nil, fmt.Errorf("generate the synthetic keyspace: %w", err)
		}
		res.Generated = &g
	} else {
		res.Source = "RDB snapshot " + o.FromRDB
		if err := loadRDB(ctx, topo.Legacy, o.FromRDB); err != nil {
			end(false)
			return nil, err
		}
	}
	var gen *loadgen.Generator
	if o.Live != nil {
		seed := uint64(1)
		if o.Synthetic != nil {
			seed = o.Synthetic.Seed
		}
		lc := loadgen.Config{Addr: topo.Legacy.Addr(), Rate: o.Live.Rate, Keys: o.Live.Keys, Libraries: true, Seed: seed}
		if sqsBucket != "" {
			lc.SkipBuckets = []string{sqsBucket} // its lists are the queue flow's (sqs.go)
		}
		gen, err = loadgen.New(lc)
		if err != nil {
			end(false)
			return nil, err
		}
		defer gen.Close()
		if err := gen.Prefill(ctx); err != nil {
			end(false)
			return nil, fmt.Errorf("write the live load's keys: %w", err)
		}
		res.Source += fmt.Sprintf(", plus the live load's keys (%d long-lived)", o.Live.Keys)
	}
	snap, err := TakeSnapshot(ctx, legacy, router)
	if err != nil {
		end(false)
		return nil, fmt.Errorf("snapshot legacy: %w", err)
	}
	res.Legacy = snap.ByBucket
	res.add(Case{Phase: PhaseLoad, OK: len(snap.Keys) > 0, Detail: fmt.Sprintf("%d keys on legacy", len(snap.Keys)), Duration: end(len(snap.Keys) > 0)})
	if len(snap.Keys) == 0 {
		return res, nil
	}

	cfgPath, err := topo.WriteConfig(o.Dir, o.Config)
	if err != nil {
		return nil, err
	}
	targets, err := store.OpenSet(ctx, res.Buckets, topo.Targets)
	if err != nil {
		return nil, err
	}
	defer targets.Close()
	// start reserves a command's place in the report; record fills it in
	// (a command that runs in the background is recorded when it ends).
	start := func(name string, args ...string) ([]string, func(Output)) {
		full := append([]string{"--config", cfgPath, "--no-progress"}, args...)
		i := len(res.Commands)
		res.Commands = append(res.Commands, Output{Args: full})
		return full, func(out Output) {
			out.Args = full
			res.Commands[i] = out
			_ = os.WriteFile(filepath.Join(o.Dir, name+".out"), []byte(out.Stdout), 0o600)
			_ = os.WriteFile(filepath.Join(o.Dir, name+".err"), []byte(out.Stderr), 0o600)
		}
	}
	run := func(name string, args ...string) Output {
		full, record := start(name, args...)
		out := o.Run(ctx, full)
		record(out)
		out.Args = full
		return out
	}
	// migrated is whether migrate claimed success: keys missing after a
	// migrate that failed or refused were not copied, which is that phase's
	// failure; keys missing after a migrate that succeeded are lost.
	migrated := true
	perBucket := func(ph string, out *Output, checks map[string]Check, d time.Duration) bool {
		all := true
		for _, b := range res.Buckets {
			c := Case{Phase: ph, Bucket: b, OK: true, Duration: d}
			if out != nil && out.Code != 0 {
				c.OK = false
				c.Detail = fmt.Sprintf("redisplit %s exited %d", ph, out.Code)
				c.Output = tail(out.Stderr+"\n"+out.Stdout, 4000)
			}
			if ck, ok := checks[b]; ok {
				if c.Detail != "" {
					c.Detail += "; "
				}
				c.Detail += ck.Detail
				c.Keys = ck.Keys
				if !ck.OK {
					c.OK = false
				}
				if ck.Loss && (migrated || ph == PhaseFinal) {
					res.Lost = true
				}
			}
			if c.Detail == "" {
				c.Detail = "ok"
			}
			all = all && c.OK
			res.add(c)
		}
		return all
	}

	// scan
	end = phase(PhaseScan)
	out := run("scan", "scan", "-o", "json")
	scanChecks := map[string]Check{}
	var rep scan.Report
	repErr := error(nil)
	if out.Code == 0 {
		repErr = json.Unmarshal([]byte(out.Stdout), &rep)
	}
	// Scan's per-bucket counts include the keys its proposals would route;
	// migrate routes with rules only, so compare the keys rules route.
	reported, proposed := map[string]int64{}, map[string]int64{}
	for _, br := range rep.Buckets {
		reported[br.Bucket] = br.KeysByRules
		proposed[br.Bucket] = br.KeysByProposals
	}
	for _, b := range res.Buckets {
		n, exp := int64(snap.ByBucket[b]), int64(snap.Expiring[b])
		ck := Check{OK: true, Detail: fmt.Sprintf("scan routes %d keys by rules, legacy holds %d", reported[b], n)}
		if proposed[b] > 0 {
			ck.Detail += fmt.Sprintf("; scan proposes rules for %d more (not in the plan: review scan --plan-out)", proposed[b])
		}
		switch {
		case out.Code != 0:
			ck.Detail = fmt.Sprintf("legacy holds %d keys", n)
		case repErr != nil:
			ck.OK, ck.Detail = false, "cannot read scan's JSON report: "+repErr.Error()
		case reported[b] > n || reported[b] < n-exp:
			// Keys with a TTL under 5 minutes may have expired in between.
			ck.OK = false
			ck.Detail += " (scan and the rehearsal's own count disagree)"
		}
		scanChecks[b] = ck
	}
	if n := snap.ByBucket[string(classify.Unknown)]; n > 0 {
		res.add(Case{Phase: PhaseScan, Bucket: string(classify.Unknown), OK: o.Config != nil && o.Config.Unknown != "" && o.Config.Unknown != "block",
			Detail: fmt.Sprintf("%d legacy keys match no rule (unknown: %s)", n, unknownSetting(o.Config))})
	}
	end(perBucket(PhaseScan, &out, scanChecks, out.Duration))

	// verifyCases adds verify's cases of phase ph from its output and the
	// checks read from it (and the rehearsal's own).
	verifyCases := func(ph string, out Output, checks map[string]Check) {
		if out.Code == 3 && migrated {
			res.Lost = true
		}
		if len(checks) > 0 && (out.Code == 0 || out.Code == 3) {
			perBucket(ph, nil, checks, out.Duration)
			if out.Code != 0 {
				// Keep verify's own words on the failed cases.
				for i := range res.Cases {
					if c := &res.Cases[i]; c.Phase == ph && !c.OK {
						c.Output = tail(out.Stderr, 2000)
					}
				}
			}
		} else {
			perBucket(ph, &out, checks, out.Duration)
		}
	}

	// loseKeyFault injects FaultLoseKey; when says when.
	loseKeyFault := func(when string) error {
		k, b, err := loseKey(ctx, snap, targets)
		if err != nil {
			return fmt.Errorf("fault lose-key: %w", err)
		}
		res.add(Case{Phase: "fault", Bucket: b, OK: true, Skipped: true, Detail: fmt.Sprintf("injected %s: deleted %q from the %s target", when, k, b)})
		return nil
	}

	// before is legacy as rollback must leave it
	before := snap
	if o.Live != nil {
		clients := map[string]redis.UniversalClient{}
		for b, t := range targets {
			clients[b] = t.Client
		}
		lr := &liveRun{o: o, res: res, legacy: legacy, router: router, targets: clients, stateDir: StateDir(o.Dir),
			gen: gen, phase: phase, start: start, run: run,
			verify: func(ph string, out Output) { verifyCases(ph, out, verifyChecks(out)) },
			snap:   snap, route: routeOf(router, o.Config), stores: targets}
		if o.Fault == FaultLoseKey {
			lr.loseKey = func() error { return loseKeyFault("after catch-up") }
		}
		if sqsBucket != "" {
			if lr.sqs, err = newSQSRun(ctx, legacy, topo.Targets[sqsBucket], sqsBucket, snap); err != nil {
				return nil, fmt.Errorf("the %s bucket on SQS: %w", sqsBucket, err)
			}
			res.Queue = lr.sqs.fig
			if o.Fault == FaultDropQueueItem {
				l, v, err := lr.sqs.dropItem(ctx)
				if err != nil {
					return nil, fmt.Errorf("fault drop-queue-item: %w", err)
				}
				res.add(Case{Phase: "fault", Bucket: sqsBucket, OK: true, Skipped: true,
					Detail: fmt.Sprintf("injected before migrate: took %q off %s on legacy and threw it away", v, l)})
			}
			lr.sqs.consume(ctx)
			defer func() { lr.sqs.stop(); <-lr.sqs.stopped }()
		}
		if err := lr.live(ctx); err != nil {
			return nil, err
		}
		if lr.cut {
			return res, nil // no rollback of every bucket: the cutover flow ended each one
		}
		if before, err = TakeSnapshot(ctx, legacy, router); err != nil {
			return nil, fmt.Errorf("snapshot legacy before rollback: %w", err)
		}
	} else {
		// migrate
		end = phase(PhaseMigrate)
		out = run("migrate", "migrate", "--yes")
		migrated = out.Code == 0
		presence, err := Presence(ctx, snap, targets)
		if err != nil {
			return nil, err
		}
		end(perBucket(PhaseMigrate, &out, presence, out.Duration))

		if o.Fault == FaultLoseKey {
			if err := loseKeyFault("after migrate"); err != nil {
				return nil, err
			}
		}

		// verify
		end = phase(PhaseVerify)
		out = run("verify", "verify", "-o", "json")
		checks := verifyChecks(out)
		if o.Fault == FaultLoseKey {
			// The rehearsal's own presence check must see the injected loss too.
			presence, err := Presence(ctx, snap, targets)
			if err != nil {
				return nil, err
			}
			for b, p := range presence {
				c := checks[b]
				c.OK = c.OK && p.OK
				c.Loss = c.Loss || p.Loss
				c.Detail += "; own check: " + p.Detail
				c.Keys = append(c.Keys, p.Keys...)
				checks[b] = c
			}
		}
		verifyCases(PhaseVerify, out, checks)
		end(out.Code == 0)
	}

	// rollback
	end = phase(PhaseRollback)
	rargs := []string{"rollback", "--yes"}
	if sqsBucket != "" {
		// the queue flow completed the SQS bucket: its jobs ran on SQS
		for _, b := range res.Buckets {
			rargs = append(rargs, "--bucket", b)
		}
	}
	out = run("rollback", rargs...)
	empty, err := Empty(ctx, targets)
	if err != nil {
		return nil, err
	}
	end(perBucket(PhaseRollback, &out, empty, out.Duration))

	// final verify: legacy exactly as before rollback, targets empty
	end = phase(PhaseFinal)
	unchanged, err := Unchanged(ctx, before, legacy, router)
	if err != nil {
		return nil, err
	}
	for b, c := range empty {
		u := unchanged[b]
		if !c.OK {
			u.OK = false // not a loss: left-over target keys are a failed rollback
			u.Detail += "; " + c.Detail
			u.Keys = append(u.Keys, c.Keys...)
		}
		unchanged[b] = u
	}
	ok := perBucket(PhaseFinal, nil, unchanged, 0)
	if u, found := unchanged[string(classify.Unknown)]; found {
		// Keys no rule routes are never migrated: they must be untouched too.
		res.add(Case{Phase: PhaseFinal, Bucket: string(classify.Unknown), OK: u.OK, Detail: u.Detail, Keys: u.Keys})
		res.Lost = res.Lost || u.Loss
		ok = ok && u.OK
	}
	end(ok)
	return res, nil
}

// verifyChecks reads verify's JSON report into one check per bucket; empty
// when the report cannot be read.
func verifyChecks(out Output) map[string]Check {
	var vr verify.Result
	if err := json.Unmarshal([]byte(out.Stdout), &vr); err != nil {
		return map[string]Check{}
	}
	checks := map[string]Check{}
	for _, br := range vr.Buckets {
		c := Check{OK: br.Parity, Loss: !br.Parity}
		if br.Parity {
			c.Detail = fmt.Sprintf("parity: %d keys compared", br.Counts.Compared)
		} else {
			var parts []string
			for _, cat := range verify.Categories {
				if n := br.Counts.Of(cat); n > 0 {
					parts = append(parts, fmt.Sprintf("%s %d", cat, n))
				}
			}
			c.Detail = fmt.Sprintf("%d keys compared: %s", br.Counts.Compared, strings.Join(parts, ", "))
		}
		checks[br.Bucket] = c
	}
	for _, d := range vr.Differences {
		if c, ok := checks[d.Bucket]; ok && d.Category.Persistent() && len(c.Keys) < 5 {
			c.Keys = append(c.Keys, fmt.Sprintf("%q (%s)", d.Key, d.Category))
			checks[d.Bucket] = c
		}
	}
	return checks
}

func unknownSetting(c *config.Config) string {
	if c == nil || c.Unknown == "" {
		return "block"
	}
	return c.Unknown
}

// loseKey deletes one migrated key from a target, preferring a session key.
func loseKey(ctx context.Context, snap *Snapshot, targets map[string]*store.Redis) (key, bucket string, err error) {
	for _, b := range []string{"session", "queue", "ratelimit", "cache"} {
		t := targets[b]
		if t == nil {
			continue
		}
		for k, f := range snap.Keys {
			if f.bucket != b || !f.expireAt.IsZero() && time.Until(f.expireAt) < time.Minute {
				continue
			}
			n, err := t.Client.Del(ctx, k).Result()
			if err != nil {
				return "", "", err
			}
			if n == 1 {
				return k, b, nil
			}
		}
	}
	return "", "", errors.New("no migrated key found on any target")
}

// loadRDB stops legacy, copies the RDB file into its data directory and
// starts it again, so that Redis loads the snapshot at start-up. The backend
// must expose the server's data directory (the container backend does).
func loadRDB(ctx context.Context, s topology.Server, path string) error {
	dd, ok := s.(interface{ DataDir() string })
	if !ok {
		return fmt.Errorf("--from-rdb needs a backend that exposes server data directories (the container backend)")
	}
	src, err := os.Open(path)
	if err != nil {
		return config.Errorf("--from-rdb", "%v", err)
	}
	defer src.Close()
	if err := s.Stop(ctx); err != nil {
		return fmt.Errorf("stop legacy to load the RDB: %w", err)
	}
	dst, err := os.OpenFile(filepath.Join(dd.DataDir(), "dump.rdb"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return fmt.Errorf("legacy did not start from %s (an RDB written by a newer Redis than the image's cannot be loaded; "+
			"choose the image with --image): %w", path, err)
	}
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
