// Command keel-bench is a Rally-style load generator for the OpenStack
// compute API. It authenticates with the usual OS_* environment (an openrc
// file) and uses only public Keystone v3, Nova and Glance calls, so the same
// run measures Keel or any OpenStack cloud. See bench/README.md.
//
// Exit status: 0 when every iteration succeeded; 1 when the run could not
// start or its cleanup failed; 2 on bad usage; 3 when some iterations
// failed (the results are still written); 130 when interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/keel-cloud/keel/bench"
	"github.com/keel-cloud/keel/internal/version"
)

const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitFailures    = 3
	exitInterrupted = 130
)

func main() {
	ctx, stop := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "\ninterrupted: stopping the iterations, then deleting the servers of this run (interrupt again to exit at once and leave them)")
		stop()
		<-sigs
		fmt.Fprintln(os.Stderr, "interrupted again: exiting; servers of this run may be left (the next run with the same --name-prefix deletes them)")
		os.Exit(exitInterrupted)
	}()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, isTerminal(os.Stderr)))
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// run is the whole command, in-process for tests.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, tty bool) int {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("keel-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Scenario, "scenario", cfg.Scenario, "what each iteration does (see the list below)")
	fs.IntVar(&cfg.Count, "count", 0, "iterations to run (default 10 when --duration is not given either)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "run iterations for this long, e.g. 30s (with --count: whichever ends first)")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "concurrent clients, each running one iteration at a time")
	fs.StringVar(&cfg.Flavor, "flavor", "", "flavor name or id (default m1.tiny, else the smallest flavor)")
	fs.StringVar(&cfg.Image, "image", "", "image name or id (default the first active image)")
	fs.StringVar(&cfg.Network, "network", cfg.Network, `networks of new servers: "none" or "auto" (compute microversion 2.37 or later)`)
	fs.StringVar(&cfg.NICNet, "nic-net", "", "attach new servers to this network id instead (clouds that require a network)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "how long each wait for a server state may take (prepare and cleanup: without progress)")
	fs.DurationVar(&cfg.Poll, "poll", cfg.Poll, "interval of the GETs while waiting for a state (the waits' resolution)")
	fs.DurationVar(&cfg.HTTPTimeout, "http-timeout", cfg.HTTPTimeout, "how long one HTTP call may take")
	fs.StringVar(&cfg.NamePrefix, "name-prefix", cfg.NamePrefix, "start of the name of every server created; servers named so are DELETED at the start and the end")
	fs.Var((*autoInt)(&cfg.Prepare), "prepare", "create `N` servers before measuring (list-detail, show, actions; default: none, one per client, one per client)")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "servers per create request while preparing (min_count = max_count)")
	fs.Var((*autoInt)(&cfg.Limit), "limit", "list calls ask for ?limit=`N` (default: --prepare for list-detail, no limit for boot-and-list)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the servers at the end (the next run with this --name-prefix deletes them)")
	jsonPath := fs.String("json", "", `write the results as JSON to this file ("-": stdout, instead of the table)`)
	svgPath := fs.String("histogram", "", "write the latency histograms as SVG to this file")
	quiet := fs.Bool("quiet", false, "no progress line")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { usage(fs, stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "keel-bench: unexpected argument %q: everything is a flag (keel-bench -h)\n", fs.Arg(0))
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintln(stdout, "keel-bench", version.Version)
		return exitOK
	}
	check := cfg
	if _, err := check.Check(getenv("OS_COMPUTE_API_VERSION")); err != nil {
		fmt.Fprintf(stderr, "keel-bench: %v\n", err)
		return exitUsage
	}
	env, err := bench.EnvFrom(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "keel-bench: %v\n", err)
		return exitError
	}
	out := bench.Output{Progress: stderr, Terminal: tty}
	if *quiet {
		out.Progress = io.Discard
	}
	rep, err := bench.Run(ctx, cfg, env, out)
	if rep == nil {
		fmt.Fprintf(stderr, "keel-bench: %v\n", err)
		return exitError
	}
	code := exitOK
	if *jsonPath != "-" {
		if e := rep.WriteTable(stdout); e != nil {
			fmt.Fprintf(stderr, "keel-bench: writing the table: %v\n", e)
			code = exitError
		}
	}
	if *jsonPath != "" {
		if e := rep.WriteJSON(*jsonPath, stdout); e != nil {
			fmt.Fprintf(stderr, "keel-bench: %v\n", e)
			code = exitError
		}
	}
	if *svgPath != "" {
		if e := rep.WriteSVGFile(*svgPath); e != nil {
			fmt.Fprintf(stderr, "keel-bench: %v\n", e)
			code = exitError
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "keel-bench: %v\n", err)
		return exitError
	case code != exitOK:
		return code
	case rep.Interrupted:
		return exitInterrupted
	case rep.Iterations.Failed > 0:
		fmt.Fprintf(stderr, "keel-bench: %d of %d iterations failed (errors by fault above)\n", rep.Iterations.Failed, rep.Iterations.Done)
		return exitFailures
	}
	return exitOK
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `keel-bench: a load generator for the OpenStack compute API (Keel or any Nova).

Usage: keel-bench --scenario NAME [--count N | --duration D] [--concurrency C] [flags]

Authenticates from the OS_* environment (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD,
OS_PROJECT_NAME, OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME, OS_REGION_NAME,
OS_INTERFACE, OS_COMPUTE_API_VERSION, OS_CACERT): source your openrc, or for Keel
  eval $(bin/keelctl openrc)

Scenarios:
`)
	for _, s := range bench.Scenarios() {
		fmt.Fprintf(w, "  %-16s %s\n", s[0], s[1])
	}
	fmt.Fprint(w, `
Prints a live progress line on stderr and a table on stdout (count, errors,
ops/s, p50/p90/p99/max/mean per operation; errors by fault).

Flags:
`)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Exit status: 0 all iterations succeeded; 1 the run could not start or its
cleanup failed; 2 bad usage; 3 some iterations failed; 130 interrupted.
`)
}

// autoInt is a count flag whose default (-1) means "the scenario decides".
type autoInt int

func (a *autoInt) String() string {
	if a == nil || *a <= 0 {
		return "" // the usage shows no "(default -1)"
	}
	return strconv.Itoa(int(*a))
}

func (a *autoInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New("want a whole number, 0 or more")
	}
	*a = autoInt(n)
	return nil
}
