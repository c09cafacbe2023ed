package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// RedisShake v4's scan reader (SCAN, then pipelined DUMP + PTTL per key,
// RESTORE ... REPLACE into one standalone target), run from a binary built
// from source (bench migrate -redisshake PATH; see docs/cost.md for the
// build). Its figures are measured like every other copier's (measure).

// runShake copies legacy into the (empty) standalone target with the
// RedisShake binary at bin, SCAN COUNT count.
func runShake(ctx context.Context, bin, legacyAddr, targetAddr string, count int) (figure, error) {
	dir, err := os.MkdirTemp("", "redisplit-bench-shake-")
	if err != nil {
		return figure{}, err
	}
	defer os.RemoveAll(dir)
	cfg := fmt.Sprintf(`[scan_reader]
address = %q
scan = true
ksn = false
count = %d

[redis_writer]
address = %q

[advanced]
dir = %q
log_file = "shake.log"
log_level = "warn"
rdb_restore_command_behavior = "rewrite"
`, legacyAddr, count, targetAddr, filepath.Join(dir, "data"))
	path := filepath.Join(dir, "shake.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return figure{}, err
	}
	return measure(ctx, "RedisShake", legacyAddr, func([]byte) (int64, error) {
		return dbsize(ctx, targetAddr), nil
	}, bin, path)
}
