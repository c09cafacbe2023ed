package scan

import "testing"

func TestTypeOfEncoding(t *testing.T) {
	for _, c := range []struct {
		enc       string
		noModules bool
		want      string
	}{
		{"int", false, "string"},
		{"embstr", false, "string"},
		{"raw", true, "string"},
		{"raw", false, ""}, // a module value reports raw too
		{"quicklist", true, "list"},
		{"linkedlist", true, "list"},
		{"intset", true, "set"},
		{"skiplist", true, "zset"},
		{"stream", true, "stream"},
		{"listpack", true, ""}, // hash, zset, list (7.2), set (7.2)
		{"ziplist", true, ""},  // hash, zset, list (< 3.2)
		{"hashtable", true, ""},
		{"something-new", true, ""},
	} {
		if got := typeOfEncoding(c.enc, c.noModules); got != c.want {
			t.Errorf("typeOfEncoding(%q, noModules=%v) = %q, want %q", c.enc, c.noModules, got, c.want)
		}
	}
}
