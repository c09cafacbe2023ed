package cmd

import (
	"strings"
	"testing"

	"github.com/redisplit/redisplit/config"
)

// cutover --dry-run's connection settings: per client kind, the password
// never printed.
func TestRenderSettings(t *testing.T) {
	for _, c := range []struct {
		t    config.Target
		want string
	}{
		{config.Target{Kind: config.KindStandalone, Endpoint: config.Endpoint{URL: "redis://app:s3cret@10.0.0.5:6379/2"}}, "10.0.0.5:6379/2"},
		{config.Target{Kind: config.KindSentinel, Master: "sessions", Sentinels: []string{"10.0.0.1:26379", "10.0.0.2:26379"}, Endpoint: config.Endpoint{Password: "s3cret"}}, `master name "sessions", sentinels: 10.0.0.1:26379, 10.0.0.2:26379`},
		{config.Target{Kind: config.KindCluster, Addrs: []string{"10.0.1.1:7000", "10.0.1.2:7000"}}, "seed nodes: 10.0.1.1:7000, 10.0.1.2:7000"},
	} {
		var b strings.Builder
		renderSettings(&b, "session", c.t)
		out := b.String()
		if !strings.Contains(out, c.want) || strings.Contains(out, "s3cret") || !strings.Contains(out, "dualwrite/client: nothing to change") {
			t.Errorf("%s:\n%s", c.t.Kind, out)
		}
	}
}
