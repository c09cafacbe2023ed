package rehearse

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/migrate"
)

// The cutover flow of a rehearsal (Live.Cutover), inside the live phase,
// after its comparison and before migrate's stop. Ordering contracts:
//
//  1. Every bucket is cut over, one after the other (redisplit cutover
//     --bucket B --yes, through the Runner, handed to the running migrate
//     --dual-write): its target becomes authoritative and a reverse mirror
//     (target → legacy) opens the switch window. One case per bucket.
//  2. Only once every cutover succeeded: a simulated application writes
//     directly to the targets for Live.AppFor — existing sessions and
//     other keys updated, counters incremented, new keys, deletes — and
//     remembers, per key, the last value it wrote (or that it deleted the
//     key): a bounded pool of keys per bucket.
//  3. One bucket (Live.RollbackBucket) is rolled back after cutover
//     (redisplit rollback --bucket B --yes): legacy must then hold every
//     write the application made on that target, and the target must be
//     at its pre-migration content — empty, as every rehearsal target
//     starts.
//  4. Every other bucket is completed with --purge-legacy: its target
//     must hold the application's writes and legacy none of its keys.
//  5. Then no bucket is mirrored any more: migrate --dual-write ends by
//     itself, with exit 0 (the live phase's stop case).

// Phases of the cutover flow, in order; all but PhaseAppWrites are per
// bucket.
const (
	PhaseCutover      = "cutover"
	PhaseAppWrites    = "app-writes"
	PhaseRollbackCut  = "rollback-after-cutover"
	PhaseComplete     = "complete"
	PhaseAfterCutover = "verify-after-cutover"
)

// The application's pool of keys, per bucket, and the pace of the purge.
const (
	appKeysPerBucket = 40 // existing keys the application updates
	appNewPerBucket  = 20 // new keys (strings and counters)
	appDelPerBucket  = 10 // existing keys the application deletes
	// purgeMaxOps paces complete --purge-legacy: the rehearsal's legacy is
	// throw-away, with no production load to protect.
	purgeMaxOps = 200_000
)

// expect is what the application last did to a key.
type expect struct {
	bucket string
	gone   bool   // deleted
	field  string // "": a string value; else a hash field
	value  string
}

// appKey is a key the simulated application writes.
type appKey struct {
	name   string
	bucket string
	op     string // "hset", "set", "incr", "del"
	n      int
}

// rollbackBucket is the bucket Live.RollbackBucket names, else session
// when it has a target, else the first bucket.
func (lr *liveRun) rollbackBucket() string {
	if b := lr.o.Live.RollbackBucket; b != "" {
		return b
	}
	for _, b := range lr.res.Buckets {
		if b == "session" {
			return b
		}
	}
	return lr.res.Buckets[0]
}

// cutover runs contracts 1 to 4; it reports whether every step passed.
func (lr *liveRun) cutover(ctx context.Context) bool {
	res := lr.res
	end := lr.phase(PhaseCutover)
	ok := true
	for _, b := range res.Buckets {
		out := lr.run("cutover-"+b, "cutover", "--bucket", b, "--yes", "-o", "json")
		c := transitionCase(PhaseCutover, "cutover", b, out)
		if c.OK {
			var d migrate.CutoverDetails
			_ = json.Unmarshal(detailsOf(out), &d)
			c.Detail = fmt.Sprintf("cut over: target authoritative, reverse mirror running (lag %d ms, last verify %.0f s ago)", d.LagMs, d.VerifyAgeSec)
		}
		res.add(c)
		ok = ok && c.OK
	}
	end(ok)
	if !ok {
		return false
	}

	end = lr.phase(PhaseAppWrites)
	t0 := time.Now()
	want, counts, err := lr.appWrites(ctx)
	ac := Case{Phase: PhaseAppWrites, OK: err == nil, Duration: time.Since(t0)}
	if err != nil {
		ac.Detail = "the application's writes on the targets failed: " + err.Error()
	} else {
		var parts []string
		for _, op := range []string{"hset", "set", "incr", "del"} {
			parts = append(parts, fmt.Sprintf("%s %d", strings.ToUpper(op), counts[op]))
		}
		ac.Detail = fmt.Sprintf("%d writes on the targets in %s, on %d keys (%s)", counts[""], ac.Duration.Round(10*time.Millisecond), len(want), strings.Join(parts, ", "))
	}
	res.add(ac)
	end(ac.OK)
	if !ac.OK {
		return false
	}

	rb := lr.rollbackBucket()
	end = lr.phase(PhaseRollbackCut)
	out := lr.run("rollback-after-cutover-"+rb, "rollback", "--bucket", rb, "--yes", "-o", "json")
	c := transitionCase(PhaseRollbackCut, "rollback", rb, out)
	if c.OK {
		var d migrate.RollbackDetails
		_ = json.Unmarshal(detailsOf(out), &d)
		c.Detail = fmt.Sprintf("rolled back after cutover: %d reverse copies onto legacy", d.ReverseCopies)
		if d.Rollback != nil {
			c.Detail += fmt.Sprintf(", %d journal entries rolled back on the target", d.Rollback.Entries)
		}
	}
	res.add(c)
	ok = c.OK
	end(c.OK)

	end = lr.phase(PhaseComplete)
	cok := true
	for _, b := range res.Buckets {
		if b == rb {
			continue
		}
		out := lr.run("complete-"+b, "complete", "--bucket", b, "--purge-legacy", "--quiet", lr.o.Live.Quiet.String(),
			"--purge-max-ops", strconv.Itoa(purgeMaxOps), "--yes", "-o", "json")
		c := transitionCase(PhaseComplete, "complete", b, out)
		if c.OK {
			var d migrate.CompleteDetails
			_ = json.Unmarshal(detailsOf(out), &d)
			c.Detail = fmt.Sprintf("completed: no application write on legacy for %s", d.QuietFor.Round(time.Millisecond))
			if d.Purge != nil {
				c.Detail += fmt.Sprintf("; purged legacy: %d keys deleted of %d scanned", d.Purge.Deleted, d.Purge.Scanned)
			}
		}
		res.add(c)
		cok = cok && c.OK
	}
	end(cok)
	lr.want = want
	return ok && cok
}

// afterCutover adds the checks of contracts 3 and 4, one case per bucket.
func (lr *liveRun) afterCutover(ctx context.Context) error {
	end := lr.phase(PhaseAfterCutover)
	rb := lr.rollbackBucket()
	onLegacy := map[string]int{}
	err := scanDigests(ctx, lr.legacy, func(k, typ string, _ uint64, _ time.Time) {
		if b := lr.route(k, typ); b != "" {
			onLegacy[b]++
		}
	})
	if err != nil {
		end(false)
		return fmt.Errorf("scan legacy after cutover: %w", err)
	}
	all := true
	for _, b := range lr.res.Buckets {
		c := Case{Phase: PhaseAfterCutover, Bucket: b, OK: true}
		side, where := lr.targets[b], "the target"
		if b == rb {
			side, where = lr.legacy, "legacy"
		}
		n, bad, err := checkWrites(ctx, side, lr.want, b)
		if err != nil {
			return fmt.Errorf("read the application's writes of %s on %s: %w", b, where, err)
		}
		c.Detail = fmt.Sprintf("%s holds the application's last write of all %d keys it wrote", where, n)
		if len(bad) > 0 {
			c.OK = false
			lr.res.Lost = true
			c.Detail = fmt.Sprintf("%s LACKS the application's last write of %d of %d keys", where, len(bad), n)
			c.Keys = sample(bad)
		}
		if b == rb {
			empty, err := Empty(ctx, lr.rawTargets(b))
			if err != nil {
				return err
			}
			e := empty[b]
			c.Detail += "; " + e.Detail
			if !e.OK {
				c.OK = false
				c.Keys = append(c.Keys, e.Keys...)
			}
		} else if onLegacy[b] > 0 {
			c.OK = false
			c.Detail += fmt.Sprintf("; legacy still holds %d keys of the bucket after complete --purge-legacy", onLegacy[b])
		} else {
			c.Detail += "; legacy holds none of the bucket's keys"
		}
		all = all && c.OK
		lr.res.add(c)
	}
	end(all)
	return nil
}

// transitionCase is the case of one transition command: passed when it
// exited 0.
func transitionCase(ph, command, b string, out Output) Case {
	c := Case{Phase: ph, Bucket: b, OK: out.Code == 0, Duration: out.Duration}
	if !c.OK {
		c.Detail = fmt.Sprintf("redisplit %s --bucket %s exited %d", command, b, out.Code)
		c.Output = tail(out.Stderr+"\n"+out.Stdout, 4000)
	}
	return c
}

// detailsOf is the details of a transition's JSON answer.
func detailsOf(out Output) json.RawMessage {
	var r migrate.ControlResponse
	_ = json.Unmarshal([]byte(out.Stdout), &r)
	return r.Details
}

// appKeys picks the keys the application writes, per bucket: existing
// keys of the bucket that will not expire during the rehearsal (strings and
// hashes are updated, others deleted) and new key names derived from them
// that the plan routes to the same bucket.
func (lr *liveRun) appKeys(ctx context.Context) ([]appKey, error) {
	byBucket := map[string][]string{}
	soon := time.Now().Add(10 * time.Minute)
	for k, f := range lr.snap.Keys {
		if f.expireAt.IsZero() || f.expireAt.After(soon) {
			byBucket[f.bucket] = append(byBucket[f.bucket], k)
		}
	}
	var keys []appKey
	for _, b := range lr.res.Buckets {
		cands := byBucket[b]
		sort.Strings(cands)
		t := lr.targets[b]
		upd, del, fresh := 0, 0, 0
		for _, k := range cands {
			if upd >= appKeysPerBucket && del >= appDelPerBucket && fresh >= appNewPerBucket {
				break
			}
			typ, err := t.Type(ctx, k).Result()
			if err != nil {
				return nil, fmt.Errorf("%s target: TYPE %q: %w", b, k, err)
			}
			switch {
			case typ == "none":
				continue
			case (typ == "hash" || typ == "string") && upd < appKeysPerBucket:
				op := "hset"
				if typ == "string" {
					op = "set"
				}
				keys = append(keys, appKey{name: k, bucket: b, op: op})
				upd++
			case del < appDelPerBucket:
				keys = append(keys, appKey{name: k, bucket: b, op: "del"})
				del++
			}
			if fresh < appNewPerBucket {
				if n := lr.newName(k, b, fresh); n != "" {
					op := "set"
					if fresh%2 == 0 {
						op = "incr"
					}
					keys = append(keys, appKey{name: n, bucket: b, op: op})
					fresh++
				}
			}
		}
		if upd+del+fresh == 0 {
			return nil, fmt.Errorf("no key of bucket %s to write on its target", b)
		}
	}
	return keys, nil
}

// newName derives from k a key name that is on neither side and that the
// plan routes to bucket b as a string; "" when none does.
func (lr *liveRun) newName(k, b string, i int) string {
	stem := k
	if j := strings.LastIndexByte(k, ':'); j > 0 {
		stem = k[:j]
	}
	for _, n := range []string{fmt.Sprintf("%s-rh%d", k, i), fmt.Sprintf("%s:rehearse-app-%d", stem, i), fmt.Sprintf("%s:rh%d", k, i)} {
		if _, taken := lr.snap.Keys[n]; !taken && lr.route(n, "string") == b {
			return n
		}
	}
	return ""
}

// appWrites is contract 2: it returns the last write per key, and the
// number of writes per operation ("" the total).
func (lr *liveRun) appWrites(ctx context.Context) (map[string]expect, map[string]int, error) {
	keys, err := lr.appKeys(ctx)
	if err != nil {
		return nil, nil, err
	}
	want := map[string]expect{}
	counts := map[string]int{}
	deadline := time.Now().Add(lr.o.Live.AppFor)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for round := 0; ; round++ {
		for i := range keys {
			k := &keys[i]
			if k.op == "del" && round > 0 {
				continue
			}
			if round > 0 && time.Now().After(deadline) {
				return want, counts, nil
			}
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-tick.C:
			}
			t := lr.targets[k.bucket]
			k.n++
			v := fmt.Sprintf("app-write-%d", k.n)
			e := expect{bucket: k.bucket, value: v}
			var err error
			switch k.op {
			case "hset":
				e.field = "rehearse_app"
				err = t.HSet(ctx, k.name, e.field, v).Err()
			case "set":
				err = t.SetArgs(ctx, k.name, v, redis.SetArgs{KeepTTL: true}).Err()
			case "incr":
				var n int64
				n, err = t.Incr(ctx, k.name).Result()
				e.value = strconv.FormatInt(n, 10)
			case "del":
				e.gone = true
				err = t.Del(ctx, k.name).Err()
			}
			if err != nil {
				return nil, nil, fmt.Errorf("%s target: %s %q: %w", k.bucket, strings.ToUpper(k.op), k.name, err)
			}
			want[k.name] = e
			counts[k.op]++
			counts[""]++
		}
	}
}

// checkWrites reads, on c, every key of bucket b in want and returns how
// many there are and those whose content is not the application's last
// write.
func checkWrites(ctx context.Context, c redis.UniversalClient, want map[string]expect, b string) (int, []string, error) {
	n := 0
	var bad []string
	for k, e := range want {
		if e.bucket != b {
			continue
		}
		n++
		var got string
		var err error
		switch {
		case e.gone:
			var x int64
			x, err = c.Exists(ctx, k).Result()
			if err == nil && x != 0 {
				bad = append(bad, k+" (deleted by the application, still there)")
			}
			continue
		case e.field != "":
			got, err = c.HGet(ctx, k, e.field).Result()
		default:
			got, err = c.Get(ctx, k).Result()
		}
		if err == redis.Nil {
			bad = append(bad, k+" (missing)")
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		if got != e.value {
			bad = append(bad, fmt.Sprintf("%s (%q, want %q)", k, got, e.value))
		}
	}
	return n, bad, nil
}
