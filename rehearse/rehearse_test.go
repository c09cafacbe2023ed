package rehearse_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/cmd"
	"github.com/redisplit/redisplit/config/configfile"
	"github.com/redisplit/redisplit/rehearse"
	"github.com/redisplit/redisplit/topology/topotest"
)

// runner runs the real command line in-process, as `redisplit rehearse` does
// (without the REDISPLIT_* environment, as the Runner contract says).
func runner(ctx context.Context, args []string) rehearse.Output {
	var out, errb bytes.Buffer
	t0 := time.Now()
	code := cmd.Run(ctx, &cmd.App{V: configfile.NewFileViper(), In: strings.NewReader(""), Out: &out, Err: &errb}, args)
	return rehearse.Output{Code: code, Stdout: out.String(), Stderr: errb.String(), Duration: time.Since(t0)}
}

// A key deleted from a target after migrate must fail the rehearsal as a
// loss, in the verify case of its bucket, from verify's report and from the
// rehearsal's own presence check.
func TestLostKeyFailsTheRehearsal(t *testing.T) {
	res, err := rehearse.Run(context.Background(), rehearse.Options{
		Backend:   topotest.Backend(t),
		Synthetic: &rehearse.Synthetic{Keys: 2000, Seed: 3, NoBig: true, ShortTTL: -1},
		Run:       runner,
		Fault:     rehearse.FaultLoseKey,
		Dir:       t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || !res.Lost {
		t.Fatalf("rehearsal with a lost key: OK=%v Lost=%v", res.OK, res.Lost)
	}
	var verifySession *rehearse.Case
	for i, c := range res.Cases {
		switch {
		case c.Phase == rehearse.PhaseMigrate && !c.OK:
			t.Errorf("migrate %s failed before the fault: %s", c.Bucket, c.Detail)
		case c.Phase == rehearse.PhaseVerify && c.Bucket == "session":
			verifySession = &res.Cases[i]
		case c.Phase == rehearse.PhaseVerify && !c.OK:
			t.Errorf("verify %s failed, only session lost a key: %s", c.Bucket, c.Detail)
		}
	}
	if verifySession == nil || verifySession.OK {
		t.Fatalf("verify/session case: %+v", verifySession)
	}
	if !strings.Contains(verifySession.Detail, "missing 1") || !strings.Contains(verifySession.Detail, "1 MISSING") {
		t.Errorf("verify/session detail does not report the loss from both verify and the own check: %s", verifySession.Detail)
	}
}
