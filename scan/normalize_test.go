package scan

import (
	"regexp"
	"strings"
	"testing"
)

// TestNormalizeIdentifierFamilies: key families that embed identifiers
// collapse into one pattern whatever the identifier's value.
func TestNormalizeIdentifierFamilies(t *testing.T) {
	families := []struct {
		want string
		keys []string
	}{
		{"login:{email}_{ip}", []string{"login:alice@example.com_10.0.0.1", "login:bob.smith+x@mail.example.co.uk_192.168.7.200", "login:c_d-e@x.io_8.8.8.8"}},
		{"rl:{ip}", []string{"rl:2001:db8::1", "rl:fe80::1ff:fe23:4567:890a", "rl:10.1.2.3", "rl:2001:0db8:0000:0000:0000:ff00:0042:8329"}},
		{"throttle:{ip}:login", []string{"throttle:2001:db8::7:login", "throttle:10.0.0.9:login"}},
		{"otp:{phone}", []string{"otp:+14155552671", "otp:+442071838750", "otp:+33612345678"}},
		{"product:{code}:stock", []string{"product:SKU-12345-XL:stock", "product:AB12CD:stock", "product:4K-TV-55:stock"}},
		{"short:{id}", []string{"short:dQw4w9WgXcQ", "short:aZ3kP9qRt2", "short:k3j2h4g5m1"}},
		{"{id24}", []string{"Xk3pQ9zR2mN8vB5cL1wT7yH4", "aB3dE5fG7hJ9kL1mN3pQ5rS7", "Z9y8X7w6V5u4T3s2R1q0P9o8"}},
		{"{uuid}", []string{"550e8400-e29b-41d4-a716-446655440000", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"}},
		{"events:{ts}", []string{"events:2024-01-02T10:05:00Z", "events:2024-12-31", "events:1700000000", "events:1700000000123"}},
		{"user:{email}:profile", []string{"user:alice@example.com:profile", "user:x.y@sub.example.org:profile"}},
	}
	for _, f := range families {
		for _, k := range f.keys {
			if got := Normalize(k).Text; got != f.want {
				t.Errorf("Normalize(%q) = %q, want %q", k, got, f.want)
			}
		}
	}
}

// TestNormalizeKeepsWords: shapes that look like identifiers but are words
// stay literal.
func TestNormalizeKeepsWords(t *testing.T) {
	for key, want := range map[string]string{
		"books::42":             "books::{n}",
		"app:OAuth2Token":       "app:OAuth{n}Token",
		"cfg:HTTP2Server":       "cfg:HTTP{n}Server",
		"PHPREDIS_SESSION:abc":  "PHPREDIS_SESSION:abc",
		"LIMITS:LIMITER/a/b":    "LIMITS:LIMITER/a/b",
		"v1/products?page=2":    "v{n}/products?page={n}",
		"stat:processed":        "stat:processed",
		"mail@localhost":        "mail@localhost",
		"Billing::InvoiceJob-1": "Billing::InvoiceJob-{n}",
		// an upper-case word among '_'-separated pieces is a name, not a
		// base64url draw (aiohttp-session's key)
		"AIOHTTP_SESSION_08871116b5fc46afa6b8460207677c2f": "AIOHTTP_SESSION_{hex}",
	} {
		if got := Normalize(key).Text; got != want {
			t.Errorf("Normalize(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestRegexOf(t *testing.T) {
	for text, want := range map[string]string{
		"{id}":         "^" + idRe + "$",
		"{n}":          `^[0-9]+$`,
		"{uuid}":       `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`,
		"{n}:{hex}":    `^[0-9]+:[0-9a-fA-F]{8,}$`,
		"user:{n}":     "",
		"2::{hex}":     "",
		"{email}_{ip}": `^[^@\s]+@[^@\s]+_` + placeholderRe[PhIP] + `$`,
	} {
		if got := regexOf(text); got != want {
			t.Errorf("regexOf(%q) = %q, want %q", text, got, want)
		}
	}
}

// TestIPRegexMatchesAddressesOnly: a {ip} proposal's regex matches IPv4 and
// IPv6 addresses, never a hex digest behind a short prefix (it once matched
// cacheops' c:{md5} and routed a cache to ratelimit).
func TestIPRegexMatchesAddressesOnly(t *testing.T) {
	re := regexp.MustCompile(regexOf("{ip}"))
	for _, k := range []string{"198.51.100.7", "2001:db8::1", "::1", "::ffff:10.0.0.1", "fe80:0:0:0:200:f8ff:fe21:67cf"} {
		if !re.MatchString(k) {
			t.Errorf("%s: not matched by %s", k, re)
		}
		if got := Normalize(k).Text; got != PhIP && !strings.HasPrefix(k, "::") {
			t.Errorf("Normalize(%q) = %q, want %s", k, got, PhIP)
		}
	}
	for _, k := range []string{"c:055ea5c18327aaa63d8e86254e3efda5", "deadbeef", "a:b", "1234", "ab:cd:ef01234567"} {
		if re.MatchString(k) {
			t.Errorf("%s matched by %s", k, re)
		}
	}
}

// TestIDAndHexRegexes: a bare id's proposal regex matches what Normalize
// calls an id or a hex token of that length, not one-word keys (a bare-{id}
// session proposal once routed dogpile's front_page to session), nor ids of
// another length (another generator: another library's keys).
func TestIDAndHexRegexes(t *testing.T) {
	oneWord := []string{"front_page", "settings", "homepage", "homepage_banners", "feature-flags", "top10", "v2", "abc", "cafe", "add", "beef"}
	for _, k := range []string{"coskc5tdqbdb5ureh9pdsi0jfv", "Yq8wX2vN5kLmP0rT3sU6zA9bC1dE4fGhJ7iK0lMnO01", "aB3dE5fG7h", "k9Qz2XwP", "xWvUtSrQpOnMlKjIhGfEdCbA",
		"2bc208e24519082e6ea70d701af14c36", "b411d7b41b0be656c4fefae8d389cc34426ebbd2"} {
		text := Normalize(k).Text
		ph, l, ok := bareLen(text)
		if !ok || l != len(k) || (ph == PhHex) != isHexToken(k) {
			t.Errorf("Normalize(%q) = %q, want a bare {id} or {hex} of length %d", k, text, len(k))
			continue
		}
		re := regexp.MustCompile(regexOf(text))
		if !re.MatchString(k) {
			t.Errorf("%s: not matched by its regex %s", k, re)
		}
		if re.MatchString(k+"0") || re.MatchString(k[1:]) {
			t.Errorf("%s's regex %s matches ids of another length", k, re)
		}
		for _, w := range oneWord {
			if re.MatchString(w) {
				t.Errorf("%s matched by %s (of %s)", w, re, text)
			}
		}
	}
	long := strings.Repeat("ab12", 20) // past maxBareLen: the unqualified {hex}
	if got := Normalize(long).Text; got != PhHex {
		t.Errorf("Normalize(80 hex) = %q, want %s", got, PhHex)
	}
	id, hex := regexp.MustCompile(regexOf(PhID)), regexp.MustCompile(regexOf(PhHex))
	for _, w := range oneWord {
		if id.MatchString(w) || hex.MatchString(w) {
			t.Errorf("%s matched by the {id} or {hex} regex", w)
		}
	}
}
