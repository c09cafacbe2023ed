package cmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology/topotest"
)

// A rehearsal runs on its own throw-away servers with their own (empty)
// credentials: the REDISPLIT_* variables of the real migration — the
// production legacy's URL and password, its state directory — reach
// neither the rehearsal's commands nor the production server.
func TestRehearseIgnoresTheProductionEnvironment(t *testing.T) {
	const secret = "pr0duction-Secret"
	prod := topotest.Standalone(t, "--requirepass", secret)
	pc := redis.NewClient(&redis.Options{Addr: prod.Addr(), Password: secret, DisableIdentity: true})
	defer pc.Close()
	ctx := context.Background()
	if err := pc.Set(ctx, "sess:prod", "do not touch", 0).Err(); err != nil {
		t.Fatal(err)
	}
	before := store.ParseInfo(pc.Info(ctx, "stats").Val())["total_connections_received"]

	dir := t.TempDir()
	prodState := filepath.Join(dir, "production-state")
	t.Setenv("REDISPLIT_LEGACY_URL", "redis://"+prod.Addr()+"/0")
	t.Setenv("REDISPLIT_LEGACY_PASSWORD", secret)
	t.Setenv("REDISPLIT_STATE_DIR", prodState)
	cfg := filepath.Join(dir, "redisplit.yaml")
	// one standalone target keeps the topology small; keys of the other
	// buckets are not migrated, which the rehearsal accepts
	if err := os.WriteFile(cfg, []byte("unknown: skip\ntargets:\n  queue: {kind: standalone, url: 'redis://127.0.0.1:1/0'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(t, "--config", cfg, "rehearse", "--backend", "process", "--synthetic", "200", "--no-progress")
	if code != ExitOK {
		t.Fatalf("rehearsal with the production environment set: exit %d\n%s\n%s", code, errs, out)
	}
	if strings.Contains(out+errs, "AUTH") || strings.Contains(out+errs, secret) {
		t.Errorf("the production password reached the rehearsal:\n%s\n%s", errs, out)
	}
	after := store.ParseInfo(pc.Info(ctx, "stats").Val())["total_connections_received"]
	if before != after {
		t.Errorf("the production legacy received connections during the rehearsal (%s before, %s after)", before, after)
	}
	if n := pc.DBSize(ctx).Val(); n != 1 {
		t.Errorf("the production legacy holds %d keys, want its 1", n)
	}
	if _, err := os.Stat(prodState); !os.IsNotExist(err) {
		t.Errorf("the production state directory was used: %v", err)
	}
}
