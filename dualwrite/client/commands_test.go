package client

import (
	"slices"
	"strings"
	"testing"
)

func TestKeysOf(t *testing.T) {
	for _, tc := range []struct {
		args []any
		keys []string
		typ  string
	}{
		{[]any{"GET", "k"}, []string{"k"}, tString},
		{[]any{"set", []byte("k"), []byte("v"), "EX", 10}, []string{"k"}, tString},
		{[]any{"mget", "a", "b", "c"}, []string{"a", "b", "c"}, tString},
		{[]any{"mset", "a", "1", "b", "2"}, []string{"a", "b"}, tString},
		{[]any{"bitop", "and", "dst", "a", "b"}, []string{"dst", "a", "b"}, tString},
		{[]any{"hset", "h", "f", "v"}, []string{"h"}, tHash},
		{[]any{"blpop", "a", "b", 5}, []string{"a", "b"}, tList},
		{[]any{"lmove", "a", "b", "left", "right"}, []string{"a", "b"}, tList},
		{[]any{"blmpop", 1, 2, "a", "b", "left"}, []string{"a", "b"}, tList},
		{[]any{"sunionstore", "d", "a", "b"}, []string{"d", "a", "b"}, tSet},
		{[]any{"sintercard", 2, "a", "b", "limit", 1}, []string{"a", "b"}, tSet},
		{[]any{"zunionstore", "d", 2, "a", "b", "weights", 1, 2}, []string{"d", "a", "b"}, tZset},
		{[]any{"zinter", 2, "a", "b"}, []string{"a", "b"}, tZset},
		{[]any{"bzpopmin", "a", "b", 0}, []string{"a", "b"}, tZset},
		{[]any{"georadius", "g", 1, 2, 3, "km", "STORE", "d"}, []string{"g", "d"}, tZset},
		{[]any{"xread", "count", 1, "STREAMS", "s1", "s2", "0", "0"}, []string{"s1", "s2"}, tStream},
		{[]any{"xreadgroup", "group", "g", "c", "streams", "s1", ">"}, []string{"s1"}, tStream},
		{[]any{"xgroup", "CREATE", "s", "g", "$"}, []string{"s"}, tStream},
		{[]any{"del", "a", "b"}, []string{"a", "b"}, tNone},
		{[]any{"rename", "a", "b"}, []string{"a", "b"}, tNone},
		{[]any{"sort", "l", "BY", "w_*", "STORE", "d"}, []string{"l", "d"}, tNone},
		{[]any{"object", "encoding", "k"}, []string{"k"}, tNone},
		{[]any{"memory", "USAGE", "k"}, []string{"k"}, tNone},
		{[]any{"eval", "return 1", 2, "a", "b", "arg"}, []string{"a", "b"}, tNone},
		{[]any{"evalsha", "abc", 0}, []string{}, tNone},
		{[]any{"fcall", "f", 1, "a", "x"}, []string{"a"}, tNone},
		{[]any{"ping"}, nil, tNone},
		{[]any{"script", "load", "return 1"}, nil, tNone},
	} {
		c, name, ok := lookup(argv(tc.args))
		if !ok {
			t.Errorf("%v: not in the table", tc.args)
			continue
		}
		keys, err := keysOf(c, argv(tc.args))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !slices.Equal(keys, tc.keys) && !(len(keys) == 0 && len(tc.keys) == 0) {
			t.Errorf("%s: keys %q, want %q", name, keys, tc.keys)
		}
		if c.typ != tc.typ {
			t.Errorf("%s: implied type %q, want %q", name, c.typ, tc.typ)
		}
	}
}

func TestKeysOfMalformed(t *testing.T) {
	for _, args := range [][]any{
		{"get"},
		{"eval", "return 1", 3, "a"},
		{"eval", "return 1", "x"},
		{"xread", "streams", "a"},
		{"xread", "count", 1},
		{"zunionstore", "d"},
	} {
		c, _, ok := lookup(argv(args))
		if !ok {
			t.Fatalf("%v: not in the table", args)
		}
		if _, err := keysOf(c, argv(args)); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestTableIsConsistent: every entry names its keys one way, and a command
// with keys says whether it reads.
func TestTableIsConsistent(t *testing.T) {
	for name, c := range commands {
		if name != strings.ToLower(name) {
			t.Errorf("%s: not lower case", name)
		}
		if c.keys != nil && c.first != 0 {
			t.Errorf("%s: both fixed and movable keys", name)
		}
		if (c.keys != nil || c.first != 0) && (c.keyless != keylessRefused || c.refuse != "") {
			t.Errorf("%s: has keys and a keyless rule or a refusal", name)
		}
		if c.step < 0 || c.first != 0 && c.step == 0 {
			t.Errorf("%s: step %d", name, c.step)
		}
		if (c.noShadow || c.unordered) && !c.read {
			t.Errorf("%s: shadow flags on a write", name)
		}
		if sp := strings.IndexByte(name, ' '); sp > 0 && !containers[name[:sp]] {
			t.Errorf("%s: %s is not a container command", name, name[:sp])
		}
	}
}
