package keyname

import (
	"encoding/json"
	"testing"
)

// Every name survives a JSON round trip, through encoding/json (Of, Name)
// and through the hand-written field (AppendField).
func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"plain:key", "sess:é:✓", "\x00\x01raw\xffkey", "\xff", "tab\tnew\nline\"quote\\", ""} {
		b, err := json.Marshal(Of(name))
		if err != nil {
			t.Fatal(err)
		}
		var j JSON
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatal(err)
		}
		if got, err := j.Name(); err != nil || got != name {
			t.Errorf("%q → %s → %q (%v)", name, b, got, err)
		}
		line := append(AppendField([]byte("{"), name), '}')
		j = JSON{}
		if err := json.Unmarshal(line, &j); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if got, _ := j.Name(); got != name {
			t.Errorf("AppendField %q → %s → %q", name, line, got)
		}
	}
	if j := Of("\x00\x01raw\xffkey"); j.Key != "" || j.KeyB64 != "AAFyYXf/a2V5" {
		t.Errorf("binary name: %+v", j)
	}
	if s := Of("a\x00b").String(); s != `"a\x00b"` {
		t.Errorf("String() = %s", s)
	}
}
