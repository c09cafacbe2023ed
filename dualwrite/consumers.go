package dualwrite

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/safety"
)

// Consumers is one job framework's workers that are alive on legacy: a
// queue bucket must not be cut over while they still take jobs there, or
// two consumer fleets run the same jobs (DESIGN.md §8).
type Consumers struct {
	Family string   `json:"family"` // "sidekiq", "asynq", "rq", "resque", "bullmq", "blocked clients", "lists"
	Alive  int      `json:"alive"`  // workers whose heartbeat is recent
	Sample []string `json:"sample"` // up to 3 of their names
	How    string   `json:"how"`    // how liveness was judged
}

// HeartbeatMaxAge is how recent a worker's heartbeat must be to count it
// alive (Sidekiq beats every 10 s, RQ and asynq refresh within 15–60 s).
const HeartbeatMaxAge = 60 * time.Second

// LiveConsumers reads the worker registries the frameworks keep on legacy
// and returns the families with workers alive at now: Sidekiq (set
// "processes", each process hash's "beat" within HeartbeatMaxAge), asynq
// (sorted set "asynq:servers" scored by the expiry its servers refresh),
// RQ (set "rq:workers" whose worker keys still exist: RQ gives them a TTL
// its heartbeat renews), Resque (set "resque:workers", each worker's entry
// in the hash "resque:workers:heartbeat" within ResqueHeartbeatMaxAge),
// Bull and BullMQ (connections named "<prefix>:<base64 of the queue>", as
// their workers name them, of a queue whose :id or :meta key exists), and
// clients blocked right now in a blocking pop
// (CLIENT LIST: flag b, last command BRPOP, BLPOP, BLMOVE, BRPOPLPUSH,
// BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP or XREADGROUP — a plain list's idle
// consumer waits there; where the user may not run CLIENT LIST that
// signal is skipped). It only reads. Plain lists have no registry: the
// pops their busy consumers make are seen by the change feed (PopWatch).
func LiveConsumers(ctx context.Context, legacy *redis.Client, now time.Time) ([]Consumers, error) {
	var out []Consumers
	add := func(family, how string, names []string) {
		if len(names) > 0 {
			c := Consumers{Family: family, Alive: len(names), How: how}
			c.Sample = names[:min(3, len(names))]
			out = append(out, c)
		}
	}
	// Sidekiq
	procs, err := legacy.SMembers(ctx, "processes").Result()
	if err != nil && !isWrongType(err) {
		return nil, err
	}
	var alive []string
	for _, p := range procs {
		beat, err := legacy.HGet(ctx, p, "beat").Result()
		if errors.Is(err, redis.Nil) || isWrongType(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if f, perr := strconv.ParseFloat(beat, 64); perr == nil && now.Sub(time.Unix(0, int64(f*1e9))) < HeartbeatMaxAge {
			alive = append(alive, p)
		}
	}
	add("sidekiq", fmt.Sprintf("process heartbeat (HGET <process> beat) within %s", HeartbeatMaxAge), alive)
	// asynq
	servers, err := legacy.ZRangeByScore(ctx, "asynq:servers", &redis.ZRangeBy{Min: strconv.FormatInt(now.Unix(), 10), Max: "+inf"}).Result()
	if err != nil && !isWrongType(err) {
		return nil, err
	}
	add("asynq", "server entries of asynq:servers not expired", servers)
	// RQ
	workers, err := legacy.SMembers(ctx, "rq:workers").Result()
	if err != nil && !isWrongType(err) {
		return nil, err
	}
	alive = nil
	for _, w := range workers {
		k := w
		if !strings.HasPrefix(k, "rq:worker:") {
			k = "rq:worker:" + w
		}
		n, err := legacy.Exists(ctx, k).Result()
		if err != nil {
			return nil, err
		}
		if n == 1 {
			alive = append(alive, strings.TrimPrefix(k, "rq:worker:"))
		}
	}
	add("rq", "worker keys of rq:workers still present (their TTL is renewed by the heartbeat)", alive)
	// Resque
	workers, err = legacy.SMembers(ctx, "resque:workers").Result()
	if err != nil && !isWrongType(err) {
		return nil, err
	}
	alive = nil
	if len(workers) > 0 {
		beats, err := legacy.HGetAll(ctx, "resque:workers:heartbeat").Result()
		if err != nil && !isWrongType(err) {
			return nil, err
		}
		for _, w := range workers {
			if t, perr := time.Parse(time.RFC3339, beats[w]); perr == nil && now.Sub(t) < ResqueHeartbeatMaxAge {
				alive = append(alive, w)
			}
		}
	}
	add("resque", fmt.Sprintf("workers of resque:workers whose resque:workers:heartbeat entry is within %s", ResqueHeartbeatMaxAge), alive)
	// clients: Bull/BullMQ workers by name, and clients blocked in a pop
	list, err := legacy.ClientList(ctx).Result()
	if err != nil && redisconn.Classify(err) != redisconn.NoPerm {
		return nil, err
	}
	var bull []string
	for _, w := range bullWorkers(list) {
		// a queue of that name exists on legacy (its id counter or meta hash)
		n, err := legacy.Exists(ctx, w.prefix+":"+w.queue+":id", w.prefix+":"+w.queue+":meta").Result()
		if err != nil {
			return nil, err
		}
		if n > 0 {
			bull = append(bull, w.addr+" on "+w.prefix+":"+w.queue)
		}
	}
	add("bullmq", "CLIENT LIST: connections named <prefix>:<base64 of the queue name> (CLIENT SETNAME by Bull and BullMQ workers) of a queue present on legacy", bull)
	add("blocked clients", "CLIENT LIST: blocked (flag b) in a blocking pop", blockedPoppers(list))
	return out, nil
}

// ResqueHeartbeatMaxAge is Resque's own pruning age for a worker whose
// heartbeat stopped (prune_interval: 5 × the 60 s heartbeat interval).
const ResqueHeartbeatMaxAge = 5 * time.Minute

type bullWorker struct{ addr, prefix, queue string }

// bullWorkers are the clients of a CLIENT LIST reply named as Bull and
// BullMQ name their workers' connections: "<prefix>:<base64(queue)>" (no
// further suffix: QueueEvents' ":qe" connections consume no jobs), where
// the name decodes to printable text.
func bullWorkers(list string) []bullWorker {
	var out []bullWorker
	for _, line := range strings.Split(list, "\n") {
		var addr, name string
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				switch k {
				case "addr":
					addr = v
				case "name":
					name = v
				}
			}
		}
		prefix, b64, ok := strings.Cut(name, ":")
		if !ok || prefix == "" || b64 == "" || strings.Contains(b64, ":") {
			continue
		}
		q, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(q) == 0 || !utf8.Valid(q) || strings.IndexFunc(string(q), func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			continue
		}
		out = append(out, bullWorker{addr: addr, prefix: prefix, queue: string(q)})
	}
	return out
}

// blockingPops are the commands a consumer blocks in.
var blockingPops = map[string]bool{"brpop": true, "blpop": true, "blmove": true, "brpoplpush": true, "blmpop": true,
	"bzpopmin": true, "bzpopmax": true, "bzmpop": true, "xreadgroup": true}

// blockedPoppers are the clients of a CLIENT LIST reply blocked in a
// blocking pop, as "addr (name) in CMD".
func blockedPoppers(list string) []string {
	var out []string
	for _, line := range strings.Split(list, "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				f[k] = v
			}
		}
		if !strings.Contains(f["flags"], "b") || !blockingPops[f["cmd"]] {
			continue
		}
		who := f["addr"]
		if f["name"] != "" {
			who += " (" + f["name"] + ")"
		}
		out = append(out, who+" in "+strings.ToUpper(f["cmd"]))
	}
	return out
}

// ConsumersRefusal is the refusal of a queue bucket's cutover while live
// names consumers on legacy (nil when live is empty): one line naming each
// family, its live workers and how they were seen.
func ConsumersRefusal(bucket string, live []Consumers) error {
	if len(live) == 0 {
		return nil
	}
	var parts []string
	for _, c := range live {
		parts = append(parts, fmt.Sprintf("%s: %d alive (%s; %s)", c.Family, c.Alive, strings.Join(c.Sample, ", "), c.How))
	}
	return &safety.Refusal{Reason: "consumers still work on legacy for bucket " + bucket + ": " + strings.Join(parts, "; "),
		Hint: "stop them, let the mirror catch up, then cut over (or pass --consumers-stopped once they are stopped)"}
}

// PopWatch records, per list of a queue bucket, when the change feed last
// showed a consumer taking from it on legacy: the events lpop and rpop
// (LPOP, RPOP, their blocking forms, LMOVE, BLMOVE, RPOPLPUSH, LMPOP...)
// and lrem (a reliable queue's acknowledgement from its processing list).
// A plain list has no worker registry; these events are how its busy
// consumers are seen without touching the application. An idle consumer
// blocked on an empty list pops nothing: LiveConsumers sees it as a
// blocked client. Safe for concurrent use; it remembers at most
// popWatchMax lists (when full, the oldest is forgotten).
type PopWatch struct {
	mu    sync.Mutex
	since time.Time
	last  map[string]time.Time
	n     map[string]int64
}

// popWatchMax bounds the lists a PopWatch remembers.
const popWatchMax = 10000

// NewPopWatch returns a PopWatch watching from now.
func NewPopWatch(now time.Time) *PopWatch {
	return &PopWatch{since: now, last: map[string]time.Time{}, n: map[string]int64{}}
}

// IsPop reports whether a keyevent is a consumer taking from a list.
func IsPop(event string) bool { return event == "lpop" || event == "rpop" || event == "lrem" }

// Observe records m when it is a pop (IsPop).
func (w *PopWatch) Observe(m Mark) {
	if !IsPop(m.Event) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.last[m.Key]; !ok && len(w.last) >= popWatchMax {
		var oldest string
		for k, t := range w.last {
			if oldest == "" || t.Before(w.last[oldest]) {
				oldest = k
			}
		}
		delete(w.last, oldest)
		delete(w.n, oldest)
	}
	w.last[m.Key] = m.At
	w.n[m.Key]++
}

// Live is the consumers the pops show alive at now: the lists popped
// within quiet, most recent first (up to 3 in Sample), each with how long
// ago; nil when none was. short: the watch has run for less than quiet,
// so it proves nothing either way (c is then nil).
func (w *PopWatch) Live(now time.Time, quiet time.Duration) (c *Consumers, short bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.since) < quiet {
		return nil, true
	}
	type pop struct {
		key string
		at  time.Time
	}
	var recent []pop
	for k, t := range w.last {
		if now.Sub(t) < quiet {
			recent = append(recent, pop{k, t})
		}
	}
	if len(recent) == 0 {
		return nil, false
	}
	sort.Slice(recent, func(i, j int) bool { return recent[i].at.After(recent[j].at) })
	c = &Consumers{Family: "lists", Alive: len(recent),
		How: fmt.Sprintf("popped on legacy within the quiet period %s (LPOP/RPOP/LMOVE/LREM events of the change feed)", quiet)}
	for _, p := range recent[:min(3, len(recent))] {
		c.Sample = append(c.Sample, fmt.Sprintf("%s last popped %s ago, %d pops seen", p.key, now.Sub(p.at).Round(time.Millisecond), w.n[p.key]))
	}
	return c, false
}

// isWrongType: the registry key holds another type (an application's own
// key of that name): not a registry.
func isWrongType(err error) bool { return redisconn.ReplyCode(err) == "WRONGTYPE" }
