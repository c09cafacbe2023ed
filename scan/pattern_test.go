package scan

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		key, text, glob string
	}{
		{"cache:api:v1:item:12345", "cache:api:v{n}:item:{n}", "cache:api:v*:item:*"},
		{"sess:00000000002a", "sess:{hex}", "sess:*"},
		{"sess:000000000100", "sess:{n}", "sess:*"},
		{"user:42:tags", "user:{n}:tags", "user:*:tags"},
		{"celery-task-meta-550e8400-e29b-41d4-a716-446655440000", "celery-task-meta-{uuid}", "celery-task-meta-*"},
		{"spring:session:sessions:550e8400-e29b-41d4-a716-446655440000", "spring:session:sessions:{uuid}", "spring:session:sessions:*"},
		{"stat:processed:2024-01-02", "stat:processed:{ts}", "stat:processed:*"},
		{"j|240102|10:05", "j|{n}|{n}:{n}", "j|*|*:*"},
		{"rl:10.1.2.3", "rl:{ip}", "rl:*"},
		{"bull:{emails}:123", "bull:{emails}:{n}", "bull:{emails}:*"},
		{"bull:{emails}:123:lock", "bull:{emails}:{n}:lock", "bull:{emails}:*:lock"},
		{"request_rate_limiter.{route1.user7}.tokens", "request_rate_limiter.{route{n}.user{n}}.tokens", "request_rate_limiter.{route*.user*}.tokens"},
		{"session_ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRST", "session_{id}", "session_*"},
		{"sess:Xk3-pQ9_zR2mN8vB5cL1wT7yH4jF6gD0", "sess:{id}", "sess:*"},
		{"laravel_database_laravel_cache_:abc", "laravel_database_laravel_cache_:abc", "laravel_database_laravel_cache_:abc"},
		{":1:rl:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ":{n}:rl:{hex}", ":*:rl:*"},
		{"events:1700000000", "events:{ts}", "events:*"},
		{"events:1700000000123", "events:{ts}", "events:*"},
		{"daily:20240131", "daily:{ts}", "daily:*"},
		{"weird*key[1]", "weird*key[{n}]", `weird\*key\[*\]`},
		{"bin:\x00\xff\x01", "bin:{bin}", "bin:*"},
		{"rmq::queue::[emails]::ready", "rmq::queue::[emails]::ready", `rmq::queue::\[emails\]::ready`},
		{"huey.redis.default", "huey.redis.default", "huey.redis.default"},
		{"deadbeef", "deadbeef", "deadbeef"},
		{"k:" + strings.Repeat("x", 200) + ":1", "k:{long}:{n}", "k:*:*"},
		{"PHPREDIS_SESSION:zhptuiroeykogofe7foyrsaiaw", "PHPREDIS_SESSION:{id}", "PHPREDIS_SESSION:*"},
		{"PHPREDIS_SESSION:zhptuiroeykogofefoyrsaiaw", "PHPREDIS_SESSION:{id}", "PHPREDIS_SESSION:*"},
		{":1:django.contrib.sessions.cachekxaglkdththypyl0fivjvbwfitlhtilq", ":{n}:django.contrib.sessions.{id}", ":*:django.contrib.sessions.*"},
		{"app:user_profile_settings", "app:user_profile_settings", "app:user_profile_settings"},
		{"LIMITS:LIMITER/10.1.2.3/login/10/1/minute", "LIMITS:LIMITER/{ip}/login/{n}/{n}/minute", "LIMITS:LIMITER/*/login/*/*/minute"},
		{"rack::attack:28400:req/ip:192.168.0.1", "rack::attack:{n}:req/ip:{ip}", "rack::attack:*:req/ip:*"},
		{"v1.2.3.4.5", "v{n}.{n}.{n}.{n}.{n}", "v*.*.*.*.*"},
		{"", "", ""},
	}
	for _, tt := range tests {
		got := Normalize(tt.key)
		if got.Text != tt.text || got.Glob != tt.glob {
			t.Errorf("Normalize(%q) = %q / %q, want %q / %q", tt.key, got.Text, got.Glob, tt.text, tt.glob)
		}
	}
}

// TestNormalizeBounded checks that a pathological name yields a bounded pattern.
func TestNormalizeBounded(t *testing.T) {
	key := ""
	for i := 0; i < 1000; i++ {
		key += "a:"
	}
	p := Normalize(key)
	if len(p.Text) > 4*maxPatternParts {
		t.Fatalf("pattern of %d bytes for a 1000-segment key", len(p.Text))
	}
}

func TestIsIPv4(t *testing.T) {
	for s, want := range map[string]bool{
		"10.0.0.1": true, "255.255.255.255": true, "0.0.0.0": true, "1.2.3.4": true,
		"256.1.1.1": false, "1.2.3": false, "1.2.3.4.5": false, "1..2.3": false, "1.2.3.": false,
		".1.2.3": false, "1234.1.1.1": false, "a.b.c.d": false, "01.002.3.4": true,
	} {
		if got := isIPv4(s); got != want {
			t.Errorf("isIPv4(%q) = %v, want %v", s, got, want)
		}
	}
}
