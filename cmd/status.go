package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/state"
)

func init() { register(newStatusCmd) }

func newStatusCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the migration state: phase, counts and checkpoint age per bucket, last verify",
		Long: `Status reads the state directory (--state-dir, default .redisplit) and shows, per bucket, the
phase (and FAILED beside it when a run stopped the bucket on an error), the target, and the whole
migration's key counts, the same as migrate's summary: KEYS (routed to the bucket by the latest
pre-pass) = copied + expired (read with its expiry reached) + gone (absent when read) + refused
(already on the target, not written by redisplit) + failed (not copied because the bucket stopped) +
pending (not reached yet); then the payload bytes written (not MEMORY USAGE), errors, how old the
last checkpoint is, and the last verify. JSON has the same numbers per bucket under "total". It
talks to no server.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return runStatus(app) },
	}
}

// statusBucket is one bucket of the status report.
type statusBucket struct {
	Name string `json:"bucket"`
	*state.Bucket
	// Total is migrate.TotalOf the state: the numbers of migrate's summary.
	Total                migrate.Totals `json:"total"`
	CheckpointAgeSeconds float64        `json:"checkpoint_age_seconds,omitempty"`
}

type statusReport struct {
	StateDir   string              `json:"state_dir"`
	PlanHash   string              `json:"plan_hash"`
	UpdatedAt  time.Time           `json:"updated_at"`
	Buckets    []statusBucket      `json:"buckets"`
	LastVerify *state.VerifyRecord `json:"last_verify,omitempty"`
}

func runStatus(app *App) error {
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	sd, err := state.OpenReadOnly(cfg.StateDir)
	if err != nil {
		return err
	}
	st, err := sd.Load()
	if err != nil {
		return err
	}
	now := time.Now()
	rep := statusReport{StateDir: sd.Path(), PlanHash: st.PlanHash, UpdatedAt: st.UpdatedAt, LastVerify: st.LastVerify}
	for _, b := range config.Buckets {
		sb := st.Buckets[b]
		if sb == nil {
			continue
		}
		x := statusBucket{Name: b, Bucket: sb, Total: migrate.TotalOf(sb)}
		if !sb.CheckpointAt.IsZero() {
			x.CheckpointAgeSeconds = now.Sub(sb.CheckpointAt).Seconds()
		}
		rep.Buckets = append(rep.Buckets, x)
	}
	if app.Output == "json" {
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	renderStatus(app.Out, rep)
	return nil
}

func renderStatus(w io.Writer, r statusReport) {
	if len(r.Buckets) == 0 {
		fmt.Fprintf(w, "no migration state in %s (nothing migrated yet)\n", r.StateDir)
		return
	}
	fmt.Fprintf(w, "state %s; plan %.12s; updated %s\n", r.StateDir, r.PlanHash, r.UpdatedAt.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BUCKET\tPHASE\tTARGET\tKEYS\tCOPIED\tEXPIRED\tGONE\tREFUSED\tFAILED\tPENDING\tPAYLOAD\tERRORS\tCHECKPOINT")
	for _, b := range r.Buckets {
		ck := "-"
		if !b.CheckpointAt.IsZero() {
			ck = time.Duration(b.CheckpointAgeSeconds*float64(time.Second)).Round(time.Second).String() + " ago"
		}
		phase := string(b.Phase)
		if b.Copied {
			phase += " (backfill done)"
		}
		if b.Failed {
			phase += " FAILED"
		}
		t := b.Total
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\n", b.Name, phase, b.Target, b.PlannedKeys,
			t.Copied, t.Expired, t.Gone, t.Refused, t.Failed, t.Pending, migrateBytes(t.Bytes), b.Errors, ck)
	}
	tw.Flush()
	fmt.Fprintln(w, "(KEYS: routed to the bucket by the latest pre-pass; PAYLOAD: bytes written, not MEMORY USAGE)")
	for _, b := range r.Buckets {
		if b.Failed {
			fmt.Fprintf(w, "FAILED %s at %s (phase %s): %s\n", b.Name, b.FailedAt.Format(time.RFC3339), b.Phase, b.LastError)
		} else if b.LastError != "" {
			fmt.Fprintf(w, "last error %s: %s\n", b.Name, b.LastError)
		}
		if b.AllowEvictingTarget {
			fmt.Fprintf(w, "WARNING %s: copied into a target that evicts (maxmemory-policy %s, --allow-evicting-target): keys may be lost\n", b.Name, b.TargetPolicy)
		}
	}
	if v := r.LastVerify; v != nil {
		verdict := "differences found"
		if v.Parity {
			verdict = "parity"
		}
		fmt.Fprintf(w, "last verify: %s (%s ago)\n", verdict, time.Since(v.At).Round(time.Second))
		for _, b := range sortedBuckets(v.Buckets) {
			c := v.Buckets[b]
			fmt.Fprintf(w, "  %s: compared %d, missing %d, extra %d, type %d, value %d, ttl %d, in flux %d, evicted %d\n",
				b, c.Compared, c.Missing, c.Extra, c.Type, c.Value, c.TTL, c.InFlux, c.Evicted)
		}
	} else {
		fmt.Fprintln(w, "last verify: never")
	}
}

func sortedBuckets[V any](m map[string]V) []string {
	var out []string
	for _, b := range config.Buckets {
		if _, ok := m[b]; ok {
			out = append(out, b)
		}
	}
	return out
}
