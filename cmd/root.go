// Package cmd is redisplit's command line: cobra commands, flags bound to the
// configuration through viper, and the rendering of engine results as text or
// JSON. It holds no migration logic: engine packages return values and
// errors, and this package prints them and maps errors to exit codes.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"golang.org/x/term"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/config/configfile"
)

// exitStatusHelp ends the root command's long help: every code.
const exitStatusHelp = `
EXIT STATUS
  0  success
  1  runtime error (a server failed, a write was refused, ...)
  2  usage or configuration error
  3  verify found differences
  4  refused for safety (non-empty or evicting target, lease held, unknown keys, plan changed, not confirmed)`

// exitCodes lists, per command, the exit codes it can return and what each
// means for it: the one place its EXIT STATUS help section comes from. A
// command missing here gets the root's full list.
var exitCodes = map[string][]string{
	"scan":          {"0  success (whatever the scan found: unknown keys and warnings are reported, not failures)", "1  runtime error (legacy unreachable, a command refused by ACL that scan cannot do without)", "2  usage or configuration error"},
	"classify":      {"0  success", "2  usage or configuration error (bad plan or rule)"},
	"migrate":       {"0  success (with --dual-write also a stop by SIGINT/SIGTERM, drained and saved)", "1  runtime error (a server failed, a bucket stopped on an error, interrupted)", "2  usage or configuration error", "4  refused for safety (non-empty, evicting or full target, lease held, unknown keys, plan changed, not confirmed)"},
	"verify":        {"0  parity (or, after rollback, the targets hold none of redisplit's keys)", "1  runtime error", "2  usage or configuration error", "3  differences remain after the re-check rounds", "4  refused for safety (plan changed, an evicting target not accepted by migrate --allow-evicting-target)"},
	"rollback":      {"0  success (or nothing to roll back; after cutover: legacy holds every write made on the target)", "1  runtime error (a target failed, or migrate --dual-write stopped mid-rollback; rerun to finish)", "2  usage or configuration error", "4  refused for safety (bucket completed, lease held, plan changed, not confirmed)"},
	"cutover":       {"0  cut over (or --dry-run: every precondition holds)", "1  runtime error (migrate --dual-write stopped before it answered: rerun it, it finishes the cutover)", "2  usage or configuration error", "4  refused: no migrate --dual-write running, bucket not syncing/verified, not caught up or lag above --max-lag, no parity verify within --max-verify-age, consumers still working on legacy (queue: framework workers, blocked pops, pops within --quiet; --consumers-stopped), not confirmed"},
	"complete":      {"0  completed (and purged with --purge-legacy)", "1  runtime error (migrate --dual-write stopped before it answered, or the purge failed: rerun)", "2  usage or configuration error", "4  refused: no migrate --dual-write running, bucket not cut over, application writes still reaching legacy after --timeout, not confirmed"},
	"status":        {"0  success", "1  runtime error (the state cannot be read; --wait-caught-up timed out)", "2  usage or configuration error"},
	"targets":       {"0  success", "1  runtime error", "2  usage or configuration error", "4  refused for safety (targets init: the output directory is not empty)", "5  targets check: a target fails its workload profile"},
	"targets init":  {"0  success", "2  usage or configuration error (bad scan report or option)", "4  refused for safety (the output directory is not empty; --force to overwrite)"},
	"targets check": {"0  every check passed (warnings do not fail it)", "1  runtime error", "2  usage or configuration error", "5  a target fails its workload profile"},
	"rehearse":      {"0  the rehearsal passed", "1  runtime error (a phase failed, containers could not start)", "2  usage or configuration error", "3  a key was lost or changed in the rehearsal"},
}

// exitStatusOf returns the EXIT STATUS section of command name.
func exitStatusOf(name string) string {
	codes, ok := exitCodes[name]
	if !ok {
		return exitStatusHelp
	}
	return "\nEXIT STATUS\n  " + strings.Join(codes, "\n  ")
}

// App carries what every command shares: the configuration source, global
// flags and the output streams. Tests build one with in-memory streams.
type App struct {
	V          *viper.Viper
	ConfigPath string
	Output     string // text | json
	NoProgress bool
	Yes        bool
	Verbose    bool

	In       io.Reader
	Out, Err io.Writer
	// IsTerminal reports whether Err is an interactive terminal (progress bars,
	// confirmation prompts).
	IsTerminal bool

	cmd *cobra.Command
}

// registry holds the constructors of the subcommands; each command file adds
// itself in init so that commands stay independent files.
var registry []func(*App) *cobra.Command

func register(f func(*App) *cobra.Command) { registry = append(registry, f) }

// NewRoot builds the command tree for app.
func NewRoot(app *App) *cobra.Command {
	if app.V == nil {
		app.V = configfile.NewViper()
	}
	root := &cobra.Command{
		Use:   "redisplit",
		Short: "Split one overloaded Redis into cache, session, queue and rate-limit stores, live",
		Long: `redisplit moves a live Redis instance that serves as cache, session store, job queue and
rate-limit store at once to one store per workload, with zero downtime, and proves it lost nothing.

  redisplit scan        classify every key and write a reviewable plan
  redisplit migrate     copy every bucket to its target
  redisplit verify      key-level parity between legacy and targets
  redisplit cutover     make a bucket's target authoritative (reverse mirror for the switch window)
  redisplit complete    end a bucket's switch window; --purge-legacy frees legacy
  redisplit rollback    delete exactly what redisplit wrote (after cutover: legacy first gets every write back)
  redisplit status      per-bucket phase and counters
  redisplit rehearse    the whole flow on throw-away containers, for CI
` + exitStatusHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			app.cmd = cmd
			if app.Output != "text" && app.Output != "json" {
				return &config.Error{Field: "--output", Msg: fmt.Sprintf("%q is not text or json", app.Output)}
			}
			if err := checkLimits(cmd); err != nil {
				return err
			}
			level := slog.LevelWarn
			if app.Verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(app.Err, &slog.HandlerOptions{Level: level})))
			return nil
		},
	}
	root.SetIn(app.In)
	root.SetOut(app.Out)
	root.SetErr(app.Err)
	pf := root.PersistentFlags()
	pf.StringVar(&app.ConfigPath, "config", config.DefaultFile, "configuration file (YAML)")
	pf.String("legacy", "", "legacy Redis URL: redis://[user[:password]@]host:port[/db] or rediss:// (prefer REDISPLIT_LEGACY_PASSWORD for the password)")
	pf.String("state-dir", "", "state directory (default .redisplit)")
	pf.String("plan", "", "routing plan file written by scan --plan-out")
	pf.StringVarP(&app.Output, "output", "o", "text", "output format: text or json")
	pf.BoolVar(&app.NoProgress, "no-progress", false, "no progress bar or progress lines")
	pf.BoolVarP(&app.Yes, "yes", "y", false, "do not ask for confirmation")
	pf.BoolVarP(&app.Verbose, "verbose", "v", false, "debug logging on stderr")
	_ = app.V.BindPFlag("legacy.url", pf.Lookup("legacy"))
	_ = app.V.BindPFlag("state_dir", pf.Lookup("state-dir"))
	_ = app.V.BindPFlag("plan", pf.Lookup("plan"))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &config.Error{Msg: err.Error() + "\nRun '" + c.CommandPath() + " --help' for usage."}
	})
	for _, f := range registry {
		c := f(app)
		if c.Long == "" {
			c.Long = c.Short
		}
		c.Long += "\n" + exitStatusOf(c.Name())
		root.AddCommand(c)
	}
	return root
}

// Config loads the configuration (file, REDISPLIT_* environment, flags).
func (a *App) Config() (*config.Config, error) {
	explicit := a.cmd != nil && a.cmd.Flags().Changed("config")
	return configfile.Load(a.V, a.ConfigPath, explicit)
}

// BindFlag binds a command flag to a configuration key, so that the flag,
// the environment and the file are one setting.
func (a *App) BindFlag(c *cobra.Command, flag, key string) {
	_ = a.V.BindPFlag(key, c.Flags().Lookup(flag))
}

// Execute runs redisplit with the process's arguments and streams and
// returns the exit code.
func Execute() int {
	app := &App{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, IsTerminal: term.IsTerminal(int(os.Stderr.Fd()))}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, app, os.Args[1:])
}

// Run runs the command line args with app and returns the exit code; errors
// are printed on app.Err.
func Run(ctx context.Context, app *App, args []string) int {
	root := NewRoot(app)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code := ExitCode(err)
	var silent *ExitError
	if err != nil && !(errors.As(err, &silent) && silent.Silent) {
		fmt.Fprintln(app.Err, "redisplit: "+err.Error())
	}
	return code
}
