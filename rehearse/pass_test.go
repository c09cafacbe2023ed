package rehearse_test

import (
	"context"
	"testing"

	"github.com/redisplit/redisplit/rehearse"
	"github.com/redisplit/redisplit/topology/topotest"
)

// The whole flow passes on a synthetic keyspace (with its big keys and keys
// that expire mid-run): every phase and bucket passes and legacy ends as it
// began.
func TestRehearsalPasses(t *testing.T) {
	res, err := rehearse.Run(context.Background(), rehearse.Options{
		Backend:   topotest.Backend(t),
		Synthetic: &rehearse.Synthetic{Keys: 5000, Seed: 5},
		Run:       runner,
		Dir:       t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	phases := map[string]int{}
	for _, c := range res.Cases {
		if !c.OK {
			t.Errorf("%s/%s failed: %s %v\n%s", c.Phase, c.Bucket, c.Detail, c.Keys, c.Output)
		}
		phases[c.Phase]++
	}
	if !res.OK || res.Lost {
		t.Errorf("OK=%v Lost=%v", res.OK, res.Lost)
	}
	for _, p := range []string{rehearse.PhaseScan, rehearse.PhaseMigrate, rehearse.PhaseVerify, rehearse.PhaseRollback, rehearse.PhaseFinal} {
		if phases[p] != 4 {
			t.Errorf("phase %s: %d cases, want 4", p, phases[p])
		}
	}
}
