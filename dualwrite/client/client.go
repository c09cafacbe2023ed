package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
)

// Defaults.
const (
	DefaultPollInterval      = time.Second
	DefaultControlTimeout    = time.Second
	DefaultShadowConcurrency = 16
)

// Options configure a Client.
type Options struct {
	// Plan is the path of the plan file the migration routes with (written
	// by `redisplit scan --plan-out`, the file redisplit.yaml's plan: names).
	// One of Plan and PlanYAML is required.
	Plan string
	// PlanYAML is the plan file's content, for an application that embeds it.
	PlanYAML []byte
	// Unknown is the bucket of keys no rule matches: the value of
	// redisplit.yaml's unknown: setting. "", "block" and "skip" leave them
	// on legacy, which is where the tool leaves them.
	Unknown string

	// Legacy is the legacy instance: every bucket before its cutover, the
	// keys of no bucket, pub/sub, and the control key.
	Legacy redis.UniversalClient
	// Targets are the buckets' targets by bucket name ("cache", "session",
	// "queue", "ratelimit"): a *redis.Client, a *redis.ClusterClient, a
	// sentinel-backed redis.NewFailoverClient... (Endpoint.Connect builds
	// one). A bucket without a target stays on legacy; if the control key
	// cuts it over, its commands fail with ErrNoTarget.
	Targets map[string]redis.UniversalClient
	// CloseStores makes Close close Legacy and Targets too.
	CloseStores bool

	// PollInterval is how often the control key is read when no PUBLISH
	// arrives (default DefaultPollInterval). It bounds the switch: a client
	// sees a phase change at most PollInterval plus one round trip to legacy
	// after it is written (at once when the PUBLISH reaches it).
	PollInterval time.Duration
	// ControlTimeout bounds one read of the control key (default
	// DefaultControlTimeout).
	ControlTimeout time.Duration

	// ShadowReads: while a bucket is syncing, every read that is routed to
	// legacy is also sent to the bucket's target, asynchronously, and the
	// replies are compared (Stats.ShadowMismatches). The caller always gets
	// legacy's reply; a shadow read never fails a command nor delays it.
	ShadowReads bool
	// ShadowConcurrency bounds the shadow reads in flight (default
	// DefaultShadowConcurrency); reads beyond it are not shadowed
	// (Stats.ShadowSkipped).
	ShadowConcurrency int

	// Logger receives a line per phase switch and per control key problem
	// (default slog.Default()).
	Logger *slog.Logger
}

// Client routes every command to the store the plan and the control key
// say, through go-redis's own command surface: it embeds a *redis.Client
// (the router) whose hook sends each command, pipeline and transaction to
// the legacy client or a target client instead of a connection of its own.
// So *Client is a redis.UniversalClient and a redis.Cmdable: c.Get, c.HSet,
// c.Pipelined, c.TxPipelined, c.Do, redis.NewScript(...).Run(ctx, c, ...),
// and libraries taking a redis.UniversalClient all work unchanged.
//
// Routing: a command goes to the store of the bucket its keys belong to
// (commands.go's table finds the keys; the plan gives the bucket). Commands
// and transactions whose keys span buckets fail with ErrCrossBucket;
// commands that cannot be routed fail with ErrUnroutable; pipelines are
// split per store and run concurrently, every command's result in its own
// Cmder as usual.
//
// Ordering: commands of one goroutine to one store keep their order, as on
// a plain client. A switch never moves a command in flight: each command
// (each pipeline, each transaction) is routed once, when it is issued,
// with the phases known then.
//
// A Client is safe for concurrent use. Methods beyond go-redis's are
// documented below; Subscribe, PSubscribe and SSubscribe go to legacy;
// Watch routes by its keys; AutoPipeline is not supported.
type Client struct {
	*redis.Client // the router

	opts    Options
	plan    *planRouter
	unknown string
	legacy  *store
	targets map[string]*store
	log     *slog.Logger

	routes atomic.Pointer[routing]
	chain  atomic.Pointer[chain]
	hookMu sync.Mutex
	hooks  []redis.Hook

	stats     counters
	ctlMu     sync.Mutex // guards the fields below
	lastErr   string
	errAt     time.Time
	switches  map[string]uint64
	planWarn  bool
	subscribd atomic.Bool

	kick      chan struct{}
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	shadowSem chan struct{}
	shadowWG  sync.WaitGroup
	closed    atomic.Bool
}

var _ redis.UniversalClient = (*Client)(nil)

type counters struct {
	crossBucket, unroutable, typeLookups                  atomic.Uint64
	shadowReads, shadowMismatches, shadowErrs, shadowSkip atomic.Uint64
	controlReads, controlErrs                             atomic.Uint64
}

// chain is the user's hooks wrapped around the routing functions.
type chain struct {
	process  redis.ProcessHook
	pipeline redis.ProcessPipelineHook
}

// New loads the plan, reads the control key on legacy (an error if legacy
// cannot be read: the client cannot know where the buckets are), and starts
// following it: a subscription to ControlChannel and a poll every
// PollInterval. Close stops it.
func New(ctx context.Context, opts Options) (*Client, error) {
	if opts.Legacy == nil {
		return nil, fmt.Errorf("redisplit client: Options.Legacy is required")
	}
	var (
		p   *planRouter
		err error
	)
	switch {
	case opts.Plan != "" && opts.PlanYAML != nil:
		return nil, fmt.Errorf("redisplit client: set Options.Plan or Options.PlanYAML, not both")
	case opts.Plan != "":
		p, err = loadPlan(classify.LoadPlan(opts.Plan))
	case opts.PlanYAML != nil:
		p, err = loadPlan(classify.ParsePlan("Options.PlanYAML", opts.PlanYAML))
	default:
		return nil, fmt.Errorf("redisplit client: Options.Plan (the plan file redisplit migrates with) is required")
	}
	if err != nil {
		return nil, fmt.Errorf("redisplit client: %w", err)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.ControlTimeout <= 0 {
		opts.ControlTimeout = DefaultControlTimeout
	}
	if opts.ShadowConcurrency <= 0 {
		opts.ShadowConcurrency = DefaultShadowConcurrency
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Client{
		opts:      opts,
		plan:      p,
		legacy:    &store{name: "legacy", c: opts.Legacy},
		targets:   map[string]*store{},
		log:       opts.Logger,
		switches:  map[string]uint64{},
		kick:      make(chan struct{}, 1),
		shadowSem: make(chan struct{}, opts.ShadowConcurrency),
	}
	switch opts.Unknown {
	case "", "block", "skip":
	default:
		if !config.IsBucket(opts.Unknown) {
			return nil, fmt.Errorf("redisplit client: Options.Unknown %q is not one of block, skip, cache, session, queue, ratelimit", opts.Unknown)
		}
		c.unknown = opts.Unknown
	}
	for b, t := range opts.Targets {
		if !config.IsBucket(b) {
			return nil, fmt.Errorf("redisplit client: Options.Targets[%q]: not a bucket (cache, session, queue, ratelimit)", b)
		}
		if t == nil {
			return nil, fmt.Errorf("redisplit client: Options.Targets[%q] is nil", b)
		}
		c.targets[b] = &store{name: b + " target", c: t}
	}
	c.routes.Store(&routing{buckets: map[string]bucketState{}})
	if err := c.refresh(ctx); err != nil {
		return nil, err
	}
	for b, s := range c.routes.Load().buckets {
		if s.err != nil {
			return nil, fmt.Errorf("redisplit client: the control key on legacy says bucket %s is %s, but Options.Targets has no %s target", b, s.Phase, b)
		}
	}
	c.chain.Store(&chain{process: c.process, pipeline: c.processPipeline})
	c.Client = redis.NewClient(&redis.Options{Addr: "redisplit-router.invalid:0", DisableIdentity: true, MaxRetries: -1})
	c.Client.AddHook(routerHook{c})

	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	ps := opts.Legacy.Subscribe(fctx, ControlChannel)
	c.wg.Add(2)
	go c.subscribe(fctx, ps)
	go c.poll(fctx)
	return c, nil
}

// Close stops following the control key, waits for shadow reads, and
// closes the router (and the stores with Options.CloseStores).
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.cancel()
	c.wg.Wait()
	c.shadowWG.Wait()
	errs := []error{c.Client.Close()}
	if c.opts.CloseStores {
		errs = append(errs, c.opts.Legacy.Close())
		for _, t := range c.opts.Targets {
			errs = append(errs, t.Close())
		}
	}
	return errors.Join(errs...)
}

// AddHook adds a go-redis hook around the client's commands: it sees every
// command and pipeline before it is routed (as on a plain client, the hook
// added last is innermost). Hooks added to the stores' own clients see the
// commands routed to them.
func (c *Client) AddHook(h redis.Hook) {
	c.hookMu.Lock()
	defer c.hookMu.Unlock()
	c.hooks = append(c.hooks, h)
	ch := &chain{process: c.process, pipeline: c.processPipeline}
	for i := len(c.hooks) - 1; i >= 0; i-- {
		if p := c.hooks[i].ProcessHook(ch.process); p != nil {
			ch.process = p
		}
		if p := c.hooks[i].ProcessPipelineHook(ch.pipeline); p != nil {
			ch.pipeline = p
		}
	}
	c.chain.Store(ch)
}

// routerHook replaces the router's connection with routing.
type routerHook struct{ c *Client }

var errRouterDial = errors.New("redisplit client: the router does not connect anywhere itself; " +
	"for pub/sub use Client.Subscribe (legacy), for a dedicated connection Client.For(key)")

func (routerHook) DialHook(redis.DialHook) redis.DialHook {
	return func(context.Context, string, string) (net.Conn, error) { return nil, errRouterDial }
}

func (h routerHook) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { return h.c.chain.Load().process(ctx, cmd) }
}

func (h routerHook) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { return h.c.chain.Load().pipeline(ctx, cmds) }
}

// target is where one command goes.
type target struct {
	cmd    command
	bucket string
	st     *store
	shadow *store
	bcast  bool // keyless, runs on every store
}

// route finds where cmd goes with snapshot snap.
func (c *Client) route(ctx context.Context, snap *routing, cmd redis.Cmder) (target, error) {
	a := argv(cmd.Args())
	cm, name, ok := lookup(a)
	if !ok {
		c.stats.unroutable.Add(1)
		return target{}, &UnroutableError{Command: name, Reason: "the client does not know where its keys are; " +
			"send it to the store of its keys' bucket with Client.For(ctx, key)"}
	}
	if cm.refuse != "" {
		c.stats.unroutable.Add(1)
		return target{}, &UnroutableError{Command: name, Reason: cm.refuse}
	}
	keys, err := keysOf(cm, a)
	if err != nil {
		c.stats.unroutable.Add(1)
		return target{}, &UnroutableError{Command: name, Reason: "cannot find its keys: " + err.Error()}
	}
	if len(keys) == 0 {
		switch cm.keyless {
		case keylessLegacy:
			return target{cmd: cm, st: c.legacy}, nil
		case keylessBroadcast:
			return target{cmd: cm, bcast: true}, nil
		}
		c.stats.unroutable.Add(1)
		return target{}, &UnroutableError{Command: name, Reason: "it names no key, so no bucket; " +
			"send it to a store directly (Client.Legacy(), Client.Target(bucket))"}
	}
	uses := make([]keyUse, len(keys))
	for i, k := range keys {
		uses[i] = keyUse{k, cm.typ}
	}
	b, st, shadow, err := c.resolve(ctx, snap, name, uses)
	if err != nil {
		return target{}, err
	}
	return target{cmd: cm, bucket: b, st: st, shadow: shadow}, nil
}

func (c *Client) process(ctx context.Context, cmd redis.Cmder) error {
	if c.closed.Load() {
		cmd.SetErr(ErrClosed)
		return ErrClosed
	}
	t, err := c.route(ctx, c.routes.Load(), cmd)
	if err != nil {
		cmd.SetErr(err)
		return err
	}
	if t.bcast {
		return c.broadcast(ctx, cmd)
	}
	t.st.commands.Add(1)
	err = t.st.c.Process(ctx, cmd)
	if t.shadow != nil {
		c.shadowRead(ctx, cmd, t.cmd, t.shadow)
	}
	return err
}

// isTx reports whether cmds is a TxPipeline's: MULTI, commands, EXEC.
func isTx(cmds []redis.Cmder) bool {
	return len(cmds) >= 2 && cmds[0].Name() == "multi" && cmds[len(cmds)-1].Name() == "exec"
}

// processPipeline routes a pipeline: every command to its own store, one
// sub-pipeline per store, the sub-pipelines concurrently. Nothing is sent
// when a command cannot be routed: every command then carries the error.
func (c *Client) processPipeline(ctx context.Context, cmds []redis.Cmder) error {
	if c.closed.Load() {
		return setAll(cmds, ErrClosed)
	}
	if isTx(cmds) {
		return c.processTx(ctx, cmds)
	}
	snap := c.routes.Load()
	targets := make([]target, len(cmds))
	var order []*store
	groups := map[*store][]redis.Cmder{}
	var bcast []redis.Cmder
	for i, cmd := range cmds {
		t, err := c.route(ctx, snap, cmd)
		if err != nil {
			return setAll(cmds, err)
		}
		targets[i] = t
		if t.bcast {
			bcast = append(bcast, cmd)
			continue
		}
		if _, ok := groups[t.st]; !ok {
			order = append(order, t.st)
		}
		groups[t.st] = append(groups[t.st], cmd)
	}
	run := func(st *store) {
		st.commands.Add(uint64(len(groups[st])))
		p := st.c.Pipeline()
		for _, cmd := range groups[st] {
			_ = p.Process(ctx, cmd)
		}
		_, _ = p.Exec(ctx) // each command carries its own result and error
	}
	if len(order) == 1 && len(bcast) == 0 {
		run(order[0])
	} else {
		var wg sync.WaitGroup
		for _, st := range order {
			wg.Go(func() { run(st) })
		}
		for _, cmd := range bcast {
			wg.Go(func() { _ = c.broadcast(ctx, cmd) })
		}
		wg.Wait()
	}
	for i, t := range targets {
		if t.shadow != nil {
			c.shadowRead(ctx, cmds[i], t.cmd, t.shadow)
		}
	}
	return firstErr(cmds)
}

// processTx routes a transaction as one: all its keys must be of one bucket,
// and it runs as MULTI/EXEC on that bucket's store.
func (c *Client) processTx(ctx context.Context, cmds []redis.Cmder) error {
	snap := c.routes.Load()
	inner := cmds[1 : len(cmds)-1]
	var uses []keyUse
	for _, cmd := range inner {
		a := argv(cmd.Args())
		cm, name, ok := lookup(a)
		if !ok || cm.refuse != "" || cm.keyless == keylessBroadcast {
			// route explains the refusal
			if _, err := c.route(ctx, snap, cmd); err != nil {
				return setAll(cmds, err)
			}
			c.stats.unroutable.Add(1)
			return setAll(cmds, &UnroutableError{Command: name, Reason: "it cannot run inside a transaction routed to one store"})
		}
		keys, err := keysOf(cm, a)
		if err != nil {
			c.stats.unroutable.Add(1)
			return setAll(cmds, &UnroutableError{Command: name, Reason: "cannot find its keys: " + err.Error()})
		}
		if len(keys) == 0 && cm.keyless != keylessLegacy {
			c.stats.unroutable.Add(1)
			return setAll(cmds, &UnroutableError{Command: name, Reason: "it names no key, so no bucket"})
		}
		for _, k := range keys {
			uses = append(uses, keyUse{k, cm.typ})
		}
	}
	_, st, _, err := c.resolve(ctx, snap, "multi/exec", uses)
	if err != nil {
		return setAll(cmds, err)
	}
	st.commands.Add(uint64(len(inner)))
	p := st.c.TxPipeline()
	for _, cmd := range inner {
		_ = p.Process(ctx, cmd)
	}
	_, err = p.Exec(ctx)
	if err != nil {
		cmds[0].SetErr(err)
		cmds[len(cmds)-1].SetErr(err)
	}
	return firstErr(cmds)
}

// broadcast runs a keyless command that must reach every store (SCRIPT
// LOAD: a script must be loadable wherever its keys are).
func (c *Client) broadcast(ctx context.Context, cmd redis.Cmder) error {
	a := argv(cmd.Args())
	if len(a) != 3 {
		err := &UnroutableError{Command: "script load", Reason: "expected SCRIPT LOAD script"}
		cmd.SetErr(err)
		return err
	}
	src := a.s(2)
	var sha string
	for _, st := range c.stores() {
		st.commands.Add(1)
		s, err := st.c.ScriptLoad(ctx, src).Result()
		if err != nil {
			err = fmt.Errorf("redisplit client: SCRIPT LOAD on %s: %w", st.name, err)
			cmd.SetErr(err)
			return err
		}
		sha = s
	}
	switch x := cmd.(type) {
	case *redis.StringCmd:
		x.SetVal(sha)
	case *redis.Cmd:
		x.SetVal(sha)
	default:
		err := fmt.Errorf("redisplit client: SCRIPT LOAD through a %T is not supported", cmd)
		cmd.SetErr(err)
		return err
	}
	return nil
}

// stores returns legacy and the targets, in bucket order.
func (c *Client) stores() []*store {
	out := []*store{c.legacy}
	for _, b := range config.Buckets {
		if t := c.targets[b]; t != nil {
			out = append(out, t)
		}
	}
	return out
}

func setAll(cmds []redis.Cmder, err error) error {
	for _, cmd := range cmds {
		cmd.SetErr(err)
	}
	return err
}

func firstErr(cmds []redis.Cmder) error {
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Watch runs fn in an optimistic transaction (WATCH keys, then fn's
// TxPipelined) on the store of the keys' bucket; the keys must be of one
// bucket (ErrCrossBucket otherwise). The *redis.Tx fn receives is that
// store's: its commands go there directly, without routing, so they must
// stay within the watched bucket.
func (c *Client) Watch(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	if len(keys) == 0 {
		return &UnroutableError{Command: "watch", Reason: "it names no key, so no bucket"}
	}
	uses := make([]keyUse, len(keys))
	for i, k := range keys {
		uses[i] = keyUse{k, ""}
	}
	_, st, _, err := c.resolve(ctx, c.routes.Load(), "watch", uses)
	if err != nil {
		return err
	}
	st.commands.Add(1)
	return st.c.Watch(ctx, fn, keys...)
}

// For returns the store key routes to now (legacy or its bucket's target),
// for what the router cannot do: a dedicated connection, blocking commands
// you want to pin, commands missing from the client's table. The store does
// not follow later switches: ask again after one.
func (c *Client) For(ctx context.Context, key string) (redis.UniversalClient, error) {
	_, st, _, err := c.resolve(ctx, c.routes.Load(), "for", []keyUse{{key, ""}})
	if err != nil {
		return nil, err
	}
	return st.c, nil
}

// BucketOf returns the bucket the client routes key to when a command
// implies type typ ("string", "hash"... or "" for a generic command): a
// bucket name, "unknown" for a key of no rule (it stays on legacy), or
// "redisplit" for redisplit's own keys; "" when typ is "" and the plan makes
// the bucket depend on the key's type. For a caller's failure policy
// ("a cache failure is a miss, a session failure is an error").
func (c *Client) BucketOf(key, typ string) string {
	b, _ := c.classify(key, typ)
	return b
}

// Legacy returns the legacy client.
func (c *Client) Legacy() redis.UniversalClient { return c.legacy.c }

// Target returns bucket's target client, or nil.
func (c *Client) Target(bucket string) redis.UniversalClient {
	if t := c.targets[bucket]; t != nil {
		return t.c
	}
	return nil
}

// Subscribe subscribes on legacy: pub/sub is not migrated.
func (c *Client) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.legacy.c.Subscribe(ctx, channels...)
}

// PSubscribe subscribes to patterns on legacy.
func (c *Client) PSubscribe(ctx context.Context, patterns ...string) *redis.PubSub {
	return c.legacy.c.PSubscribe(ctx, patterns...)
}

// SSubscribe subscribes to shard channels on legacy.
func (c *Client) SSubscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.legacy.c.SSubscribe(ctx, channels...)
}

var errAutoPipeline = errors.New("redisplit client: AutoPipeline is not supported; use Pipelined, or a store's own AutoPipeline")

// AutoPipeline is not supported.
func (c *Client) AutoPipeline() (*redis.AutoPipeliner, error) { return nil, errAutoPipeline }

// AutoPipelineWithOptions is not supported.
func (c *Client) AutoPipelineWithOptions(*redis.AutoPipelineOptions) (*redis.AutoPipeliner, error) {
	return nil, errAutoPipeline
}

// AsyncAutoPipeline is not supported.
func (c *Client) AsyncAutoPipeline() (*redis.AutoPipeliner, error) { return nil, errAutoPipeline }

// AsyncAutoPipelineWithOptions is not supported.
func (c *Client) AsyncAutoPipelineWithOptions(*redis.AutoPipelineOptions) (*redis.AutoPipeliner, error) {
	return nil, errAutoPipeline
}

// PlanHash is the routing hash of the client's plan (as `redisplit status`
// and the state record it).
func (c *Client) PlanHash() string { return c.plan.Hash() }

// Phase returns the phase this client currently routes bucket by ("" when
// the control key has no field for it: legacy).
func (c *Client) Phase(bucket string) ControlValue {
	return c.routes.Load().buckets[bucket].ControlValue
}

// Stats are the client's counters since New.
type Stats struct {
	Buckets map[string]BucketStats `json:"buckets"`
	// Commands counts the commands sent to each store ("legacy",
	// "session target"...), TYPE lookups excluded.
	Commands map[string]uint64 `json:"commands"`

	CrossBucket uint64 `json:"cross_bucket"` // commands refused with ErrCrossBucket
	Unroutable  uint64 `json:"unroutable"`   // commands refused with ErrUnroutable
	TypeLookups uint64 `json:"type_lookups"` // TYPE sent to resolve a key whose bucket depends on its type

	ShadowReads      uint64 `json:"shadow_reads"`      // reads compared on a syncing bucket's target
	ShadowMismatches uint64 `json:"shadow_mismatches"` // of which the target answered differently
	ShadowErrors     uint64 `json:"shadow_errors"`     // shadow reads the target failed
	ShadowSkipped    uint64 `json:"shadow_skipped"`    // reads not shadowed: reply type not comparable, or too many in flight

	ControlReads     uint64    `json:"control_reads"`
	ControlErrors    uint64    `json:"control_errors"` // failed reads and unparsable fields of the control key
	LastControlRead  time.Time `json:"last_control_read"`
	LastControlError string    `json:"last_control_error,omitempty"`
	Subscribed       bool      `json:"subscribed"` // the subscription to ControlChannel is live
	// PlanMismatch: the control key names a plan hash other than this
	// client's: the application and the tool route with different plans.
	PlanMismatch bool `json:"plan_mismatch"`
}

// BucketStats is one bucket's routing.
type BucketStats struct {
	ControlValue
	Store    string `json:"store"`    // where its commands go now
	Switches uint64 `json:"switches"` // store changes observed since New
}

// Stats returns the counters. Safe to call at any time.
func (c *Client) Stats() Stats {
	snap := c.routes.Load()
	s := Stats{
		Buckets:          map[string]BucketStats{},
		Commands:         map[string]uint64{},
		CrossBucket:      c.stats.crossBucket.Load(),
		Unroutable:       c.stats.unroutable.Load(),
		TypeLookups:      c.stats.typeLookups.Load(),
		ShadowReads:      c.stats.shadowReads.Load(),
		ShadowMismatches: c.stats.shadowMismatches.Load(),
		ShadowErrors:     c.stats.shadowErrs.Load(),
		ShadowSkipped:    c.stats.shadowSkip.Load(),
		ControlReads:     c.stats.controlReads.Load(),
		ControlErrors:    c.stats.controlErrs.Load(),
		LastControlRead:  snap.read,
		Subscribed:       c.subscribd.Load(),
	}
	for _, st := range c.stores() {
		s.Commands[st.name] = st.commands.Load()
	}
	c.ctlMu.Lock()
	s.LastControlError = c.lastErr
	s.PlanMismatch = c.planWarn
	for _, b := range config.Buckets {
		bs := BucketStats{Store: c.legacy.name, Switches: c.switches[b]}
		if st, ok := snap.buckets[b]; ok {
			bs.ControlValue = st.ControlValue
			switch {
			case st.err != nil:
				bs.Store = "none: " + st.err.Error()
			default:
				bs.Store = st.st.name
			}
		}
		s.Buckets[b] = bs
	}
	c.ctlMu.Unlock()
	return s
}
