// Command keelctl operates a Keel cluster through the controllers' internal
// API: cluster status, removing a dead controller, snapshot save and
// restore, compute services and hosts (disable, enable, force down,
// evacuate), and generating the cluster key. It is an HTTP client only: every
// call is signed with the cluster key (see cluster/auth.go).
//
// `keelctl snapshot restore` replaces the whole cluster state with the
// snapshot, without asking for confirmation: everything written since the
// snapshot was saved is lost.
//
// Exit status: 0 on success; 1 on errors (bad usage, wrong cluster key,
// refused request); 2 from `cluster status` when the cluster is unhealthy or
// the controller at --url cannot be reached.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/keel-cloud/keel/internal/cli"
	"github.com/keel-cloud/keel/internal/version"
)

// Exit statuses.
const (
	exitOK        = 0
	exitError     = 1
	exitUnhealthy = 2
)

const defaultURL = "http://127.0.0.1:8774"

func main() {
	os.Exit(newApp().run(os.Args[1:]))
}

// app holds what a command needs from its environment, so tests can run
// commands in-process.
type app struct {
	stdout, stderr io.Writer
	// progress: stderr is a terminal, so transfers may show progress.
	progress bool

	g globals
}

func newApp() *app {
	return &app{stdout: os.Stdout, stderr: os.Stderr, progress: isTerminal(os.Stderr)}
}

// globals are the flags every command accepts, before or after its name.
type globals struct {
	url            string
	clusterKey     string
	clusterKeyFile string
	timeout        time.Duration
}

// register adds the global flags to fs. Their defaults are their current
// values, so flags given before the command name stay in effect.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.url, "url", g.url, "a controller's API address (env KEEL_URL)")
	fs.StringVar(&g.clusterKey, "cluster-key", g.clusterKey, "the cluster key, base64 (env KEEL_CLUSTER_KEY)")
	fs.StringVar(&g.clusterKeyFile, "cluster-key-file", g.clusterKeyFile,
		"file holding the cluster key, used when --cluster-key is not set (env KEEL_CLUSTER_KEY_FILE; default ./keel-data/cluster.key)")
	fs.DurationVar(&g.timeout, "timeout", g.timeout,
		"how long to wait for a controller's answer; for snapshot transfers, how long a transfer may stall (env KEEL_TIMEOUT)")
}

// exitErr carries an exit status other than exitError.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

// errUsage: the usage was printed already; exit 1 without more output.
var errUsage = errors.New("usage")

type command struct {
	name, args, summary string
	run                 func(a *app, args []string) error
}

var commands = []command{
	{"cluster status", "[--json]", "show every controller and whether the cluster can serve writes (exit 2 if not)", (*app).clusterStatus},
	{"cluster remove-peer", "NAME", "remove a controller from the cluster for good (stop it first)", (*app).removePeer},
	{"services", "[--json]", "list the services with their committed state beside gossip's view", (*app).services},
	{"hosts", "[--json]", "list the compute hosts: state, gossip view, usage, whether they can be evacuated", (*app).hosts},
	{"host disable", "HOST [--reason R]", "give HOST no new servers (its servers keep running)", (*app).hostDisable},
	{"host enable", "HOST", "let HOST get new servers again", (*app).hostEnable},
	{"host force-down", "HOST [--clear]", "fence HOST: you vouch it is off, so its servers may be evacuated at once", (*app).hostForceDown},
	{"host evacuate", "HOST [--target H]", "rebuild every server of a down HOST elsewhere, with progress and a summary", (*app).hostEvacuate},
	{"snapshot save", "FILE", "save a consistent snapshot of the cluster state to FILE", (*app).snapshotSave},
	{"snapshot restore", "FILE", "REPLACE THE WHOLE CLUSTER STATE with the snapshot in FILE (no confirmation asked)", (*app).snapshotRestore},
	{"token rotate-keys", "", "make a new token signing key; tokens signed by the old ones stay valid until they expire", (*app).tokenRotateKeys},
	{"openrc", "[--password P]", "print the OS_* environment of the admin user, for the openstack CLI", (*app).openrc},
	{"keygen", "", "print a new random cluster key", (*app).keygen},
	{"test-image", "FILE", "write a tiny bootable raw disk image (prints to the serial console) to FILE", (*app).testImage},
	{"version", "", "print keelctl's version", (*app).version},
	{"help", "", "show this help", nil},
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintf(w, `Usage: keelctl [global flags] COMMAND [flags] [args]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-35s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(w, `
Global flags (accepted before or after the command):
  --url URL               a controller's API address (default $KEEL_URL, else %s)
  --cluster-key KEY       the cluster key, base64 (default $KEEL_CLUSTER_KEY)
  --cluster-key-file F    read the key from F when --cluster-key is not set
                          (default $KEEL_CLUSTER_KEY_FILE, else ./keel-data/cluster.key,
                          which a single-node controller generates)
  --timeout D             how long to wait for an answer (default 10s); for snapshot
                          transfers, how long a transfer may stall

Exit status: 0 on success, 1 on error, 2 when "cluster status" finds the cluster
unhealthy or cannot reach the controller at --url.
`, defaultURL)
}

// run executes one command line and returns the exit status.
func (a *app) run(args []string) int {
	err := a.dispatch(args)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if !errors.Is(err, errUsage) {
		fmt.Fprintln(a.stderr, "keelctl:", err)
	}
	var ee *exitErr
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitError
}

func (a *app) dispatch(args []string) error {
	a.g = globals{url: defaultURL, timeout: 10 * time.Second}
	fs := flag.NewFlagSet("keelctl", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() { a.usage(a.stderr) }
	a.g.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The environment fills in the global flags not given before the
	// command; flags given after it (parsed later) override both.
	if err := cli.ApplyEnv(fs); err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		a.usage(a.stderr)
		fmt.Fprintln(a.stderr, "\nkeelctl: no command given")
		return errUsage
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		a.usage(a.stdout)
		return nil
	}
	for _, c := range commands {
		words := strings.Fields(c.name)
		if c.run == nil || len(args) < len(words) || strings.Join(args[:len(words)], " ") != c.name {
			continue
		}
		return c.run(a, args[len(words):])
	}
	a.usage(a.stderr)
	var subs []string
	for _, c := range commands {
		if group, sub, ok := strings.Cut(c.name, " "); ok && group == args[0] {
			subs = append(subs, sub)
		}
	}
	switch {
	case len(subs) > 0 && len(args) == 1:
		fmt.Fprintf(a.stderr, "\nkeelctl: %q needs a subcommand: %s\n", args[0], strings.Join(subs, ", "))
	case len(subs) > 0:
		fmt.Fprintf(a.stderr, "\nkeelctl: unknown command \"%s %s\" (%s has: %s)\n", args[0], args[1], args[0], strings.Join(subs, ", "))
	default:
		fmt.Fprintf(a.stderr, "\nkeelctl: unknown command %q\n", args[0])
	}
	return errUsage
}

// flags returns a flag set for a command that also accepts the global flags.
func (a *app) flags(name, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("keelctl "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n%s\n\nFlags:\n", strings.TrimSpace("keelctl "+name+" [flags] "+args), summary)
		fs.PrintDefaults()
	}
	a.g.register(fs)
	return fs
}

// parseArgs parses a command's flags, which may come before or after its
// arguments, and checks it got exactly nargs positional arguments.
func parseArgs(fs *flag.FlagSet, args []string, nargs int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != nargs {
		fs.Usage()
		fmt.Fprintf(fs.Output(), "\n%s: want %d argument(s), got %d: %q\n", fs.Name(), nargs, len(pos), pos)
		return nil, errUsage
	}
	return pos, nil
}

func (a *app) version(args []string) error {
	fs := a.flags("version", "", "print keelctl's version")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "keelctl", version.Version)
	return nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
