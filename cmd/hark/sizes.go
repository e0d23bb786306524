package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// sizeUnits are the suffixes a byte size may carry; binary and decimal
// both, since people write either.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
}

// parseSize reads a byte size: "4096", "64MiB", "512m", "1GB".
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a byte size (e.g. 4096, 64MiB, 1GB)", s)
	}
	return n * mult, nil
}

// fmtSize writes a byte size in the largest binary unit that holds it whole.
func fmtSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

type sizeValue struct{ p *int64 }

func (v sizeValue) String() string {
	if v.p == nil {
		return ""
	}
	return fmtSize(*v.p)
}

func (v sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

func (sizeValue) Type() string { return "size" }

// sizeVar defines a byte-size flag on f whose default comes from the
// environment variable env when it is set.
func sizeVar(f *pflag.FlagSet, p *int64, name, env string, def int64, usage string) {
	*p = def
	if v, ok := os.LookupEnv(env); ok && v != "" {
		if n, err := parseSize(v); err == nil {
			*p = n
		} else {
			fmt.Fprintf(os.Stderr, "hark: ignoring %s=%q: %v\n", env, v, err)
		}
	}
	f.Var(sizeValue{p}, name, usage+" ("+env+")")
}

// intVar defines an int flag whose default comes from env when it is set.
func intVar(f *pflag.FlagSet, p *int, name, env string, def int, usage string) {
	*p = def
	if v, ok := os.LookupEnv(env); ok && v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			*p = n
		} else {
			fmt.Fprintf(os.Stderr, "hark: ignoring %s=%q: not a number\n", env, v)
		}
	}
	f.IntVar(p, name, *p, usage+" ("+env+")")
}
