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
		"pickle-p2.bin":                 sigPickle,
		"pickle-p4.bin":                 sigPickle,
		"pickle-p5.bin":                 sigPickle,
		"pickle-django-session.bin":     sigSessionFields,
		"pickle-cachelib.bin":           sigCachelibPickle,
		"dogpile-cached-value.bin":      sigDogpileValue,
		"zlib.bin":                      sigCompressed,
		"gzip.bin":                      sigCompressed,
		"lz4-frame.bin":                 sigCompressed,
		"zstd-frame.bin":                sigCompressed,
		"snappy-framed.bin":             sigCompressed,
		"s2-framed.bin":                 sigCompressed,
		"json-document.bin":             sigJSON,
		"json-keyv.bin":                 sigKeyvJSON,
		"json-celery-message.bin":       sigJobJSON,
		"json-express-session.bin":      sigSessionJSON,
		"msgpack-python-map.bin":        sigSessionFields, // {"_permanent": ...}: Flask-Session's msgpack
		"msgpack-python-array.bin":      sigMsgpack,
		"msgpack-go-map.bin":            sigSessionFields,
		"marshal-hash.bin":              sigMarshal,
		"marshal-rails-cache-entry.bin": sigRailsCache,
		"php-serialize-array.bin":       sigPHPSerialize,
		"php-serialize-object.bin":      sigPHPSerialize,
		"php-igbinary.bin":              sigIgbinary,
		"php-session-encoding.bin":      sigPHPSession,
		"php-laravel-session.bin":       sigPHPSession,
		"java-serialization.bin":        sigJava,
		"gob-gorilla-sessions.bin":      sigGorillaGob,
		"gob-scs-session.bin":           sigSCSGob,
		"gob-struct.bin":                sigGob,
		"go-redis-cache-small.bin":      sigGoRedisCache,
		"go-redis-cache-s2.bin":         sigGoRedisCache,
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
