package cmd

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/redisplit/redisplit/config"
)

// Every numeric or duration flag of every command declares its valid range
// next to its definition, with limit or atLeast; the root command checks
// every flag of the command about to run against its range before the
// command starts (checkLimits), so that a bad value exits 2 with the range
// instead of being silently replaced or used. TestEveryNumericFlagHasALimit
// keeps it so.

// limitKey is the flag annotation holding a range: [lo] or [lo, hi].
const limitKey = "redisplit_limit"

type limitable interface {
	~int | ~int64 | ~uint64 | ~float64
}

// limit declares that flag name of f takes values from lo to hi; the
// flag's help says so.
func limit[T limitable](f *pflag.FlagSet, name string, lo, hi T) {
	annotate(f, name, fmt.Sprintf("%v to %v", lo, hi), fmt.Sprint(lo), fmt.Sprint(hi))
}

// atLeast declares that flag name of f takes values from lo up.
func atLeast[T limitable](f *pflag.FlagSet, name string, lo T) {
	annotate(f, name, fmt.Sprintf("%v or more", lo), fmt.Sprint(lo))
}

func annotate(f *pflag.FlagSet, name, help string, bounds ...string) {
	if err := f.SetAnnotation(name, limitKey, bounds); err != nil {
		panic("limit: " + err.Error()) // a programming error: no such flag
	}
	fl := f.Lookup(name)
	fl.Usage += " (" + help + ")"
}

// checkLimits checks every flag of c that declares a range (the defaults
// too) and returns a *config.Error naming the first flag out of its range.
func checkLimits(c *cobra.Command) error {
	var err error
	c.Flags().VisitAll(func(fl *pflag.Flag) {
		if b, ok := fl.Annotations[limitKey]; ok && err == nil {
			err = checkLimit(fl, b)
		}
	})
	return err
}

func checkLimit(fl *pflag.Flag, bounds []string) error {
	name := "--" + fl.Name
	v := fl.Value.String()
	switch fl.Value.Type() {
	case "int", "int64":
		return check(name, v, bounds, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })
	case "uint64":
		return check(name, v, bounds, func(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) })
	case "float64":
		return check(name, v, bounds, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
	case "duration":
		return check(name, v, bounds, time.ParseDuration)
	}
	panic(fmt.Sprintf("limit: flag %s is of type %s, which has no range", name, fl.Value.Type()))
}

func check[T int64 | uint64 | float64 | time.Duration](name, value string, bounds []string, parse func(string) (T, error)) error {
	must := func(s string) T {
		x, err := parse(s)
		if err != nil {
			panic(fmt.Sprintf("limit of %s: %v", name, err)) // a programming error: bound of another type
		}
		return x
	}
	v := must(value)
	if len(bounds) == 1 {
		return config.AtLeast(name, v, must(bounds[0]))
	}
	return config.InRange(name, v, must(bounds[0]), must(bounds[1]))
}
