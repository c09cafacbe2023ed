package scan

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSignatureFixtures: every value fixture under testdata/values was
// written by the format's reference encoder (or the library's own; see
// testdata/values/generate.sh). Each shows its signature, and only
// signatures that name a bucket where the format is a library's envelope.
func TestSignatureFixtures(t *testing.T) {
	want := map[string]int{
		"pickle-p2.bin":                      sigPickle,
		"pickle-p4.bin":                      sigPickle,
		"pickle-p5.bin":                      sigPickle,
		"pickle-django-session.bin":          sigSessionFields,
		"pickle-cachelib.bin":                sigCachelibPickle,
		"dogpile-cached-value.bin":           sigDogpileValue,
		"zlib.bin":                           sigCompressed,
		"gzip.bin":                           sigCompressed,
		"lz4-frame.bin":                      sigCompressed,
		"zstd-frame.bin":                     sigCompressed,
		"snappy-framed.bin":                  sigCompressed,
		"s2-framed.bin":                      sigCompressed,
		"json-document.bin":                  sigJSON,
		"json-keyv.bin":                      sigKeyvJSON,
		"json-celery-message.bin":            sigJobJSON,
		"json-express-session.bin":           sigSessionJSON,
		"msgpack-python-map.bin":             sigSessionFields, // {"_permanent": ...}: Flask-Session's msgpack
		"msgpack-python-array.bin":           sigMsgpack,
		"msgpack-go-map.bin":                 sigSessionFields,
		"marshal-hash.bin":                   sigMarshal,
		"marshal-rails-cache-entry.bin":      sigRailsCache,
		"php-serialize-array.bin":            sigPHPSerialize,
		"php-serialize-object.bin":           sigPHPSerialize,
		"php-igbinary.bin":                   sigIgbinary,
		"php-session-encoding.bin":           sigPHPSession,
		"php-laravel-session.bin":            sigPHPSession,
		"java-serialization.bin":             sigJava,
		"gob-gorilla-sessions.bin":           sigGorillaGob,
		"gob-scs-session.bin":                sigSCSGob,
		"gob-struct.bin":                     sigGob,
		"go-redis-cache-small.bin":           sigGoRedisCache,
		"go-redis-cache-s2.bin":              sigGoRedisCache,
		"signed-django-session.bin":          sigSessionFields, // signed, zlib-compressed JSON: the payload decides
		"signed-pickle-task.bin":             sigPickle,        // as a string: a signed pickle; as a list item, a job (TestSignedAndHeaderedPayloads)
		"cachecontrol-response.bin":          sigHTTPResponse,  // "cc=4," then msgpack
		"json-aiohttp-session.bin":           sigSessionRecord, // {"created": ..., "session": {...}}
		"pickle-requests-cache-response.bin": sigHTTPResponse,  // _content, created_at, elapsed, encoding, headers: the fourth field lies past 128 bytes
		"chi-cache-object.bin":               sigExpiryHeader,  // created, early expiry, expiry, flags, version, Storable
	}
	files, err := filepath.Glob("testdata/values/*.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Errorf("%d fixtures, %d expectations: keep them in step", len(files), len(want))
	}
	for _, f := range files {
		name := filepath.Base(f)
		v, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got := sigsOf("string", v)
		w, ok := want[name]
		if !ok {
			t.Errorf("%s: no expectation", name)
			continue
		}
		if !got[w] {
			t.Errorf("%s: signals %v, want %s", name, names(got), signatures[w].desc)
		}
		for sig := range got {
			if b := signatures[sig].bucket; b != "" && sig != w && b != signatures[w].bucket {
				t.Errorf("%s: also shows %s (%s)", name, signatures[sig].desc, b)
			}
		}
	}
}

func names(sigs map[int]bool) []string {
	var out []string
	for s := range sigs {
		out = append(out, signatures[s].desc)
	}
	return out
}

// TestSignedAndHeaderedPayloads: what a signed token signs, and what a
// version header precedes, is sniffed as the value itself, from the bytes
// read only (the fixtures cut at sniffBytes); a signed pickled task in a
// list is a job; plain base64 and short words are not unwrapped.
// TestMessageMembers: a sorted-set member or list item that is a serialised
// map, also behind a short nonce, is a message (channels_redis's members: 12
// random bytes, then msgpack; as its layer wrote them); a plain id or a
// timestamp is not.
func TestMessageMembers(t *testing.T) {
	for _, m := range []string{
		"y\x1d\x9c\xe3\xb3\xc9\x10\xd6>\xdd!D\x82\xa4type\xa8task.run\xa2id\x00",
		",\xc5\x80\xbe\xc7\xdc\xf2T\x7f\xb4\xdb\x1c\x83\xa4type\xacchat.message\xa4text\xa7hello 0",
		`{"type": "chat.message", "text": "hi"}`,
	} {
		if got := sigsOf("zset", []byte(m)); !got[sigMessageMember] {
			t.Errorf("%q: %v, want %s", m, names(got), signatures[sigMessageMember].desc)
		}
	}
	for _, m := range []string{"1796326089.7392783", "specific.bb1c743a82db44f29a8b773196e9e185!0d5d319706a1415492cda8bd7ed01f0a", "550e8400-e29b-41d4-a716-446655440000"} {
		if got := sigsOf("zset", []byte(m)); got[sigMessageMember] {
			t.Errorf("%q: a message, want none", m)
		}
	}
}

func TestSignedAndHeaderedPayloads(t *testing.T) {
	read := func(name string) []byte {
		v, err := os.ReadFile(filepath.Join("testdata", "values", name))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := sigsOf("list", read("signed-pickle-task.bin")); !got[sigJobJSON] {
		t.Errorf("signed pickled task as a list item: %v, want a job", names(got))
	}
	if got := sigsOf("list", read("signed-django-session.bin")); len(got) != 0 {
		t.Errorf("signed session as a list item: %v, want nothing", names(got))
	}
	for _, v := range []string{"Zm9vYmFyYmF6cXV4cXV1eA", "settings", "cc=4,plain text", "v1|hello", "abcdefghijklmnop:x"} {
		if p := signedPayload([]byte(v), true); p != nil {
			t.Errorf("signedPayload(%q) = %q, want nil", v, p)
		}
		if p := behindHeader([]byte(v)); p != nil {
			t.Errorf("behindHeader(%q) = %q, want nil", v, p)
		}
	}
	got := map[int]bool{}
	sniffString(read("signed-django-session.bin")[:90], 0, false, func(s int) { got[s] = true }) // a read that stopped inside the signed payload
	if !got[sigSessionFields] {
		t.Errorf("signed session cut at 90 bytes: %v, want session fields", names(got))
	}
}
