package dualwrite

import (
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/safety"
	"github.com/redisplit/redisplit/topology/topotest"
)

func TestNotifyValue(t *testing.T) {
	for _, tc := range []struct {
		old, want  string
		sufficient bool
	}{
		{"", "EA", false},
		{"m", "EAm", false},
		{"Km", "EAKm", false},
		{"Kx", "EAK", false},
		{"Ex", "EA", false},
		{"g$lshzxE", "EA", false}, // no e, no t
		{"AK", "EAK", false},      // no E
		{"KEA", "KEA", true},
		{"AE", "AE", true},
		{"AKEmn", "AKEmn", true},
		{"g$lshzxetE", "g$lshzxetE", true},
	} {
		if got := NotifySufficient(tc.old); got != tc.sufficient {
			t.Errorf("NotifySufficient(%q) = %v", tc.old, got)
		}
		if got := NotifyValue(tc.old); got != tc.want {
			t.Errorf("NotifyValue(%q) = %q, want %q", tc.old, got, tc.want)
		}
		if !NotifySufficient(NotifyValue(tc.old)) {
			t.Errorf("NotifyValue(%q) is not sufficient", tc.old)
		}
	}
}

func TestEnableRestoreKeepsFlags(t *testing.T) {
	_, admin := legacy(t)
	ctx := ctxT(t)
	admin.ConfigSet(ctx, "notify-keyspace-events", "Km")
	s, err := EnableNotifications(ctx, admin, own)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Known || s.Old != "Km" || s.Set != "EAKm" || !s.Changed() {
		t.Fatalf("setting = %+v", s)
	}
	got, _ := configGetNotify(ctx, admin)
	if !NotifySufficient(got) || !strings.Contains(got, "K") || !strings.Contains(got, "m") {
		t.Fatalf("after Enable: %q", got)
	}
	// Already sufficient: nothing changes.
	if s2, err := EnableNotifications(ctx, admin, own); err != nil || s2.Changed() {
		t.Fatalf("second Enable: %+v, %v", s2, err)
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := RestoreNotifications(ctx, admin, s); err != nil {
			t.Fatal(err)
		}
		if got, _ := configGetNotify(ctx, admin); !sameFlags(got, "Km") {
			t.Fatalf("after Restore #%d: %q", i+1, got)
		}
	}
}

func TestRestoreLeavesAChangedValue(t *testing.T) {
	_, admin := legacy(t)
	ctx := ctxT(t)
	admin.ConfigSet(ctx, "notify-keyspace-events", "")
	s, err := EnableNotifications(ctx, admin, own)
	if err != nil || s.Set != "EA" {
		t.Fatalf("%+v, %v", s, err)
	}
	admin.ConfigSet(ctx, "notify-keyspace-events", "AKE") // someone else
	err = RestoreNotifications(ctx, admin, s)
	if !errors.Is(err, ErrNotifyChanged) {
		t.Fatalf("Restore = %v", err)
	}
	if got, _ := configGetNotify(ctx, admin); !sameFlags(got, "AKE") {
		t.Fatalf("Restore changed it: %q", got)
	}
}

func TestEnableRefusedWithExactValue(t *testing.T) {
	srv, admin := legacy(t)
	ctx := ctxT(t)
	admin.ConfigSet(ctx, "notify-keyspace-events", "m")
	if err := admin.Do(ctx, "acl", "setuser", "getonly", "on", ">pw", "~*", "&*", "+@all", "-config", "+config|get").Err(); err != nil {
		t.Fatal(err)
	}
	u := client(t, srv.Addr(), "getonly", "pw", 0)
	_, err := EnableNotifications(ctx, u, own)
	var r *safety.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("want a refusal, got %v", err)
	}
	for _, want := range []string{`notify-keyspace-events = "EAm"`, srv.Addr(), `is "m"`, "NOPERM"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q: %v", want, err)
		}
	}
}

// Without CONFIG at all (ACL, or disabled as on managed services), a probe
// decides: notifications already on pass, off is refused with "EA".
func TestEnableWithoutConfigProbes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"acl", nil},
		{"renamed", []string{"--rename-command", "CONFIG", "CFGADM"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, admin := startNoConfig(t, tc.args)
			ctx := ctxT(t)
			setNotify := func(v string) {
				t.Helper()
				cmd := "config"
				if tc.args != nil {
					cmd = "cfgadm"
				}
				if err := admin.Do(ctx, cmd, "set", "notify-keyspace-events", v).Err(); err != nil {
					t.Fatal(err)
				}
			}
			u := admin
			if tc.args == nil {
				if err := admin.Do(ctx, "acl", "setuser", "nocfg", "on", ">pw", "~*", "&*", "+@all", "-config").Err(); err != nil {
					t.Fatal(err)
				}
				u = client(t, srv, "nocfg", "pw", 0)
			}
			setNotify("Ex")
			_, err := EnableNotifications(ctx, u, own)
			var r *safety.Refusal
			if !errors.As(err, &r) {
				t.Fatalf("want a refusal, got %v", err)
			}
			for _, want := range []string{`notify-keyspace-events = "EA"`, srv, "class $,g,l,s,h,z,t"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal lacks %q: %v", want, err)
				}
			}
			setNotify("KEA")
			s, err := EnableNotifications(ctx, u, own)
			if err != nil || !s.Probed || s.Known || s.Changed() {
				t.Fatalf("with KEA set: %+v, %v", s, err)
			}
			if n := admin.Exists(ctx, own+"probe:set", own+"probe:rpush").Val(); n != 0 {
				t.Errorf("probe keys left behind: %d", n)
			}
		})
	}
}

func startNoConfig(t *testing.T, args []string) (string, *redis.Client) {
	t.Helper()
	srv := topotest.Standalone(t, args...)
	return srv.Addr(), client(t, srv.Addr(), "", "", 0)
}
