package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/layout"
	"github.com/redisplit/redisplit/layout/skew"
	"github.com/redisplit/redisplit/scan"
	"github.com/redisplit/redisplit/topology/topotest"
)

// writeSkewKeys writes n cache keys "page:<i>" spread over every slot and,
// when tagged > 0, a family of that many keys pinned to one slot by the hash
// tag {user42}; and a few session keys (not forecast).
func writeSkewKeys(t *testing.T, c *redis.Client, n, tagged int) {
	t.Helper()
	ctx := context.Background()
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < n; i++ {
			p.Set(ctx, fmt.Sprintf("page:%d", i), strings.Repeat("p", 100), time.Hour)
		}
		for i := 0; i < tagged; i++ {
			p.Set(ctx, fmt.Sprintf("cart:{user42}:item:%d", i), strings.Repeat("c", 100), time.Hour)
		}
		for i := 0; i < 100; i++ {
			p.HSet(ctx, fmt.Sprintf("sess:%d", i), "user", i)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func skewConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "redisplit.yaml")
	rules := "rules:\n  - {prefix: \"page:\", bucket: cache}\n  - {prefix: \"cart:\", bucket: cache}\n  - {prefix: \"sess:\", bucket: session}\n"
	if err := os.WriteFile(p, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameForecast fails unless scan's forecast is, field for field, what
// targets init --keys computes (layout.ForecastKeys) from scan's export.
func sameForecast(t *testing.T, r *scan.Report, keys string, masters int) {
	t.Helper()
	f, err := os.Open(keys)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := layout.ForecastKeys(f, "cache", masters)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(r.CacheForecast.Forecast)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("scan's forecast differs from targets init --keys on its export:\nscan:    %s\ntargets: %s", got, exp)
	}
}

// The scan forecasts the cache cluster's skew as it streams: a hash-tagged
// family pinned to one slot makes a WARNING naming the tag with the fix; a
// uniform keyspace gives none; and the forecast is exactly the one targets
// init computes from the key export, for the same masters, sampled or not.
func TestScanCacheSkewForecast(t *testing.T) {
	srv := topotest.Standalone(t)
	ctx := context.Background()
	uniform := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 1, DisableIdentity: true})
	defer uniform.Close()
	tagged := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 2, DisableIdentity: true})
	defer tagged.Close()
	writeSkewKeys(t, uniform, 6000, 0)
	writeSkewKeys(t, tagged, 6000, 3000)
	cfg := skewConfig(t)

	t.Run("uniform keyspace: no warning", func(t *testing.T) {
		keys := filepath.Join(t.TempDir(), "keys.jsonl")
		r, _ := scanJSON(t, "--config", cfg, "--legacy", "redis://"+srv.Addr()+"/1", "--keys-out", keys, "--count", "50")
		fc := r.CacheForecast
		if fc == nil || fc.Keys != 6000 || fc.Masters != scan.DefaultCacheMasters || len(fc.Nodes) != 3 {
			t.Fatalf("forecast %+v, want 6000 cache keys over 3 masters", fc)
		}
		if len(fc.Overloaded) != 0 || len(fc.HashTags) != 0 {
			t.Fatalf("uniform keyspace flagged: %+v %+v", fc.Overloaded, fc.HashTags)
		}
		for _, n := range fc.Nodes {
			if n.KeyShare < 0.30 || n.KeyShare > 0.37 {
				t.Fatalf("node %d holds %.1f%% of a uniform keyspace", n.Node, 100*n.KeyShare)
			}
		}
		if v := verdict(r, "cache-skew"); v.Status != scan.StatusOK {
			t.Fatalf("cache-skew verdict %+v, want ok", v)
		}
		sameForecast(t, r, keys, 3)
		code, out, errs := scanCLI(t, "--config", cfg, "--legacy", "redis://"+srv.Addr()+"/1", "--no-progress")
		if code != 0 || !strings.Contains(out, "== cache skew forecast") || strings.Contains(out, "WARNING") {
			t.Fatalf("exit %d %s; text report:\n%s", code, errs, out)
		}
	})

	t.Run("hash-tagged family: warning names it, with the fix", func(t *testing.T) {
		for _, masters := range []string{"3", "5"} {
			keys := filepath.Join(t.TempDir(), "keys.jsonl")
			r, _ := scanJSON(t, "--config", cfg, "--legacy", "redis://"+srv.Addr()+"/2", "--keys-out", keys, "--cache-masters", masters)
			fc := r.CacheForecast
			if fc == nil || fc.Keys != 9000 || fmt.Sprint(fc.Masters) != masters {
				t.Fatalf("forecast %+v, want 9000 keys over %s masters", fc, masters)
			}
			slot := skew.Slot("cart:{user42}:item:0")
			if len(fc.Overloaded) != 1 {
				t.Fatalf("%s masters: overloaded %+v, want the node of slot %d", masters, fc.Overloaded, slot)
			}
			o := fc.Overloaded[0]
			if !strings.Contains(o.Message, "{user42}") || !strings.Contains(o.Fix, "hash tag {user42}") {
				t.Fatalf("warning does not name the family or its fix: %+v", o)
			}
			if len(fc.HashTags) != 1 || fc.HashTags[0].Tag != "user42" || fc.HashTags[0].Keys != 3000 || fc.HashTags[0].Slot != slot || fc.HashTags[0].Node != o.Node {
				t.Fatalf("hash tags %+v, want {user42}: 3000 keys on slot %d, node %d", fc.HashTags, slot, o.Node)
			}
			if fc.HotSlots[0].Slot != slot {
				t.Fatalf("hottest slot %d, want %d", fc.HotSlots[0].Slot, slot)
			}
			if v := verdict(r, "cache-skew"); v.Status != scan.StatusWarn || !strings.Contains(v.Message, "{user42}") || !strings.Contains(v.Message, "fix:") {
				t.Fatalf("cache-skew verdict %+v", v)
			}
			sameForecast(t, r, keys, fc.Masters)
		}
		code, out, errs := scanCLI(t, "--config", cfg, "--legacy", "redis://"+srv.Addr()+"/2", "--no-progress")
		if code != 0 || !strings.Contains(out, "WARNING: node ") || !strings.Contains(out, "fix: remove the hash tag {user42}") {
			t.Fatalf("exit %d %s; text report:\n%s", code, errs, out)
		}
	})

	t.Run("big key: warning names it, fix splits it", func(t *testing.T) {
		db := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 4, DisableIdentity: true})
		defer db.Close()
		writeSkewKeys(t, db, 3000, 0)
		if err := db.Set(ctx, "page:huge", strings.Repeat("h", 1<<20), 0).Err(); err != nil {
			t.Fatal(err)
		}
		keys := filepath.Join(t.TempDir(), "keys.jsonl")
		r, _ := scanJSON(t, "--config", cfg, "--legacy", "redis://"+srv.Addr()+"/4", "--keys-out", keys)
		fc := r.CacheForecast
		if len(fc.Overloaded) != 1 || len(fc.BigKeys) != 1 || fc.Overloaded[0].Node != fc.BigKeys[0].Node ||
			!strings.Contains(fc.Overloaded[0].Message, `big key "page:huge"`) || !strings.Contains(fc.Overloaded[0].Fix, `split the big key "page:huge"`) {
			t.Fatalf("overloaded %+v, big keys %+v", fc.Overloaded, fc.BigKeys)
		}
		sameForecast(t, r, keys, 3)
	})

	t.Run("sampled bytes: still the export's forecast", func(t *testing.T) {
		keys := filepath.Join(t.TempDir(), "keys.jsonl")
		r, _ := scanJSON(t, "--config", cfg, "--legacy", "redis://"+srv.Addr()+"/2", "--keys-out", keys, "--sample", "30")
		if !r.CacheForecast.BytesEstimated {
			t.Fatalf("sampled scan's forecast claims measured bytes")
		}
		sameForecast(t, r, keys, 3)
	})

	t.Run("keys routed to cache by accepted proposals: forecast with --keys-out", func(t *testing.T) {
		db := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 3, DisableIdentity: true})
		defer db.Close()
		_, err := db.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := 0; i < 3000; i++ {
				p.Set(ctx, fmt.Sprintf("fragment:html:%d", i), fmt.Sprintf("<div>%d</div>", i), time.Hour)
			}
			for i := 0; i < 1500; i++ {
				p.Set(ctx, fmt.Sprintf("views:{v}:%d", i), fmt.Sprintf("<html>%d</html>", i), time.Hour)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		legacy := "redis://" + srv.Addr() + "/3"
		r, _ := scanJSON(t, "--legacy", legacy)
		if c := bucketOf(r, "cache"); c.KeysByProposals != 4500 {
			t.Fatalf("cache by proposals: %d keys, want 4500 (fixture no longer proposed as cache)", c.KeysByProposals)
		}
		if fc := r.CacheForecast; fc.Keys != 0 || fc.NotForecast != 4500 || !strings.Contains(verdict(r, "cache-skew").Message, "--keys-out") {
			t.Fatalf("without --keys-out: forecast of %d keys, %d not forecast; verdict %+v", fc.Keys, fc.NotForecast, verdict(r, "cache-skew"))
		}
		keys := filepath.Join(t.TempDir(), "keys.jsonl")
		r, _ = scanJSON(t, "--legacy", legacy, "--keys-out", keys)
		fc := r.CacheForecast
		if fc.Keys != 4500 || fc.NotForecast != 0 || len(fc.Overloaded) != 1 || !strings.Contains(fc.Overloaded[0].Fix, "hash tag {v}") {
			t.Fatalf("with --keys-out: %d keys, %d not forecast, overloaded %+v", fc.Keys, fc.NotForecast, fc.Overloaded)
		}
		sameForecast(t, r, keys, 3)
	})

	t.Run("--cache-masters out of range is refused", func(t *testing.T) {
		code, _, errs := scanCLI(t, "--config", cfg, "--legacy", "redis://"+srv.Addr()+"/1", "--cache-masters", "2")
		if code == 0 || !strings.Contains(errs, "cache-masters") {
			t.Fatalf("exit %d: %s", code, errs)
		}
	})
}
