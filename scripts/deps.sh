#!/usr/bin/env bash
# Installs what redisplit's tests, benchmarks and demo need on a fresh Debian
# machine: Redis 7 (server, sentinel, cli), Valkey 8 (a newer server whose
# DUMP payloads Redis 7.0 rejects: the migrate test of the logical fallback
# copies from it) and a running Docker daemon.
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
if ! command -v valkey-server >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then echo "deps: missing valkey-server; install it (Debian: bookworm-backports or trixie) as root" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache show valkey-server >/dev/null 2>&1; then
    . /etc/os-release
    echo "deb http://deb.debian.org/debian ${VERSION_CODENAME}-backports main" >/etc/apt/sources.list.d/redisplit-backports.list
    apt-get update -qq
  fi
  # the package would start a system valkey on 6379, where Debian's redis
  # runs: forbid service starts during the install (unless a policy exists)
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get install -y -qq -t "$(. /etc/os-release; echo ${VERSION_CODENAME})-backports" valkey-server >/dev/null 2>&1 \
    || apt-get install -y -qq valkey-server >/dev/null
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
# classify/libtest's scan accuracy test runs real Python, PHP and Ruby
# libraries from Debian's packages (Celery/kombu, Django + django-redis,
# python-rq, limits, Flask-Session, and the holdouts Flask-Caching, cacheops,
# Symfony Cache/RateLimiter/Messenger, dogpile.cache, Beaker, cachelib, Predis, redis-activesupport,
# CacheControl, requests-cache, django-redis-sessions, Django Q, sidekiq-cron, cachy, aiohttp-session, Moneta, CHI,
# channels_redis, APScheduler, django-cachalot, Catalyst's Redis session store, Geocoder; phpredis's session handler; ActiveSupport's RedisCacheStore); a missing one is skipped by the test, so install them.
libs=(python3-redis python3-celery python3-django python3-django-redis python3-rq python3-limits python3-flask-session python3-flask-caching python3-django-cacheops
  python3-dogpile.cache python3-beaker python3-cachelib php-predis ruby-redis-activesupport
  python3-cachecontrol python3-requests-cache python3-django-redis-sessions python3-django-q ruby-sidekiq-cron
  php-cli php-redis php-symfony-cache php-symfony-rate-limiter php-symfony-redis-messenger ruby ruby-redis ruby-activesupport
  python3-cachy python3-aiohttp-session python3-channels-redis ruby-moneta ruby-rack libchi-driver-redis-perl
  python3-apscheduler python3-django-cachalot libcatalyst-perl libcatalyst-plugin-session-store-redis-perl libcatalyst-plugin-session-state-cookie-perl ruby-geocoder ruby-webrick)
missing=()
for p in "${libs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "deps: missing ${missing[*]} (classify/libtest skips those libraries); install them as root" >&2
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
if command -v docker >/dev/null 2>&1; then
  if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null 2>&1; then
      (dockerd --iptables=false --ip6tables=false >/tmp/dockerd.log 2>&1 &)
      for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    fi
  fi
fi
exit 0
