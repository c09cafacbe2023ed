#!/usr/bin/env bash
# Demo of `make demo`, in two parts:
#  1. starts a throw-away redis-server on a free port, loads the built-in
#     sample keyspace (framework keys of every bucket plus application keys no
#     preset knows: go run ./scan/sample), runs `redisplit scan` against it
#     with --plan-out, shows the report and the plan's proposals;
#  2. the main job on the built-in sample: `redisplit rehearse --synthetic
#     20000`, the whole flow on throw-away containers (legacy, a 3-master cache
#     cluster, sessions behind Sentinel, queue and ratelimit stores): scan →
#     migrate --dual-write under a live write load (10 s) → caught up → verify
#     → key-by-key comparison → cutover of every bucket → an application
#     writing to the targets (3 s) → rollback after cutover of session,
#     complete --purge-legacy of the others → migrate's end → checks, with
#     its Markdown report. Without a Docker daemon it rehearses on local redis-server
#     processes instead.
# Everything it starts is removed at the end; nothing else is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/redisplit}
[ -x "$BIN" ] || go build -o "$BIN" .
command -v redis-server >/dev/null || { echo "demo: redis-server not found; run scripts/deps.sh" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/redisplit-demo.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A free port: one nothing answers on, retried if the server cannot bind it.
for _ in $(seq 1 20); do
  port=$(( 20000 + RANDOM % 40000 ))
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --protected-mode no \
    --dir "$work" --logfile "$work/redis.log" &
  pid=$!
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
  kill "$pid" 2>/dev/null || true; pid=""
done
[ -n "$pid" ] || { echo "demo: could not start redis-server" >&2; exit 1; }
echo "demo: throw-away redis-server on 127.0.0.1:$port (dir $work)"

go run ./scan/sample -keys 20000 "127.0.0.1:$port"
echo
echo "\$ redisplit scan --legacy redis://127.0.0.1:$port --plan-out plan.yaml --keys-out keys.jsonl"
"$BIN" scan --legacy "redis://127.0.0.1:$port" --plan-out "$work/plan.yaml" --keys-out "$work/keys.jsonl"
echo
echo "--- plan.yaml: presets and config rules first, then the accepted proposals with their evidence:"
sed -n '/# proposal for/,$p' "$work/plan.yaml"
echo
echo "--- first lines of keys.jsonl ($(wc -l <"$work/keys.jsonl") keys):"
head -3 "$work/keys.jsonl"

echo
backend=containers
if ! docker info >/dev/null 2>&1; then
  backend=process
  echo "demo: no Docker daemon: the rehearsal runs on local redis-server processes"
fi
echo "\$ redisplit rehearse --synthetic 20000 --report rehearsal.md --junit rehearsal.xml"
"$BIN" rehearse --synthetic 20000 --backend "$backend" --report "$work/rehearsal.md" --junit "$work/rehearsal.xml"
echo
echo "demo: rehearsal passed; JUnit XML: $(grep -c '<testcase' "$work/rehearsal.xml") test cases, 0 failures"
