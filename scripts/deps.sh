#!/usr/bin/env bash
# Installs what redisplit's tests, benchmarks and demo need on a fresh Debian
# machine: Redis 7 (server, sentinel, cli) and a running Docker daemon.
set -euo pipefail
need=()
for b in redis-server redis-sentinel redis-cli; do command -v "$b" >/dev/null 2>&1 || need+=("$b"); done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "deps: missing ${need[*]}; install redis-server redis-sentinel redis-tools (as root)" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server redis-sentinel redis-tools >/dev/null
fi
# Debian starts a system redis-server on 6379 after install; tests never use it.
if command -v docker >/dev/null 2>&1; then
  if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null 2>&1; then
      (dockerd --iptables=false --ip6tables=false >/tmp/dockerd.log 2>&1 &)
      for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    fi
  fi
fi
exit 0
