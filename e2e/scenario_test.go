package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// A CLI scenario is data: a list of steps, each one openstack CLI command run
// as a named user and a check of what it printed. runScenario runs the steps
// in order and stops at the first one that fails, naming it. It never fails
// the test itself, so a test can also assert that a broken scenario fails,
// and where (TestCLIScenarioCatchesABrokenStep).

// scenarioUser names whose credentials a step runs with; scenarioEnv.users
// maps it to a user, password and project.
type scenarioUser string

const (
	asAdmin  scenarioUser = "admin"
	asTenant scenarioUser = "tenant"
)

// scenarioStep is one openstack command and the check of its output.
type scenarioStep struct {
	// name identifies the step in a failure; unique in a scenario.
	name string
	user scenarioUser
	// args are the CLI's arguments; "{key}" in an argument is replaced by
	// the value an earlier step saved under key.
	args []string
	// wantFail: the command must exit non-zero, and check gets its stderr
	// (a step that expects a refusal checks why it was refused).
	wantFail bool
	// poll, when set, reruns the command until check passes or poll has
	// passed: for state that settles after the command that changed it
	// (a server stopping). A non-zero exit is never retried.
	poll time.Duration
	// check parses the output (stdout, or stderr with wantFail) and returns
	// an error when it is wrong. It may save values for later steps.
	// Required: a step whose output cannot be wrong checks nothing.
	check func(out []byte, s *scenarioState) error
}

// scenarioState carries values (ids) from one step to the next.
type scenarioState struct {
	vars map[string]string
}

// save stores v, which must be a non-empty string (an id from JSON output),
// under key.
func (s *scenarioState) save(key string, v any) error {
	str, ok := v.(string)
	if !ok || str == "" {
		return fmt.Errorf("cannot save %s: want a non-empty string, got %#v", key, v)
	}
	s.vars[key] = str
	return nil
}

// get returns the value saved under key ("" if none).
func (s *scenarioState) get(key string) string { return s.vars[key] }

var placeholder = regexp.MustCompile(`\{([a-z0-9_]+)\}`)

// expand replaces the {key} placeholders in args with saved values.
func (s *scenarioState) expand(args []string) ([]string, error) {
	out := make([]string, len(args))
	var missing []string
	for i, a := range args {
		out[i] = placeholder.ReplaceAllStringFunc(a, func(m string) string {
			key := m[1 : len(m)-1]
			v, ok := s.vars[key]
			if !ok {
				missing = append(missing, key)
			}
			return v
		})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("arguments use %s, which no earlier step saved", strings.Join(missing, ", "))
	}
	return out, nil
}

// scenarioCreds are the credentials of one scenarioUser.
type scenarioCreds struct {
	user, password, project string
}

// scenarioEnv is where a scenario runs: step i goes to nodes[i%len(nodes)],
// so a scenario on a cluster crosses every controller.
type scenarioEnv struct {
	nodes []*node
	users map[scenarioUser]scenarioCreds
	// globalArgs go before every command's arguments (the compute
	// microversion).
	globalArgs []string
	// cmdTimeout bounds one command (default 90s).
	cmdTimeout time.Duration
	// logf reports each command and how long it took (t.Logf).
	logf func(format string, args ...any)
}

// stepError is runScenario's failure: the step (1-based index and name)
// and what was wrong.
type stepError struct {
	index int
	step  string
	err   error
}

func (e *stepError) Error() string {
	return fmt.Sprintf("scenario step %d %q: %v", e.index, e.step, e.err)
}

func (e *stepError) Unwrap() error { return e.err }

// runScenario runs steps in order and returns nil, or a *stepError naming
// the first step whose command failed (with the CLI's stderr) or whose
// check rejected the output. Malformed steps (no name, a repeated name, no
// check, an unknown user) are refused before anything runs.
func runScenario(ctx context.Context, env *scenarioEnv, steps []scenarioStep) error {
	seen := map[string]bool{}
	for i, st := range steps {
		var err error
		switch _, ok := env.users[st.user]; {
		case st.name == "":
			err = errors.New("the step has no name")
		case seen[st.name]:
			err = errors.New("another step has the same name")
		case st.check == nil:
			err = errors.New("the step has no check")
		case !ok:
			err = fmt.Errorf("no credentials for user %q", st.user)
		}
		if err != nil {
			return &stepError{index: i + 1, step: st.name, err: fmt.Errorf("malformed scenario: %w", err)}
		}
		seen[st.name] = true
	}
	if len(env.nodes) == 0 {
		return errors.New("scenario: no controllers to run against")
	}
	s := &scenarioState{vars: map[string]string{}}
	for i, st := range steps {
		if err := env.runStep(ctx, env.nodes[i%len(env.nodes)], st, s); err != nil {
			return &stepError{index: i + 1, step: st.name, err: err}
		}
	}
	return nil
}

// cliRun is the outcome of one openstack command.
type cliRun struct {
	desc           string // "openstack ARGS (as USER on NODE)"
	stdout, stderr []byte
	code           int
}

// runStep runs one step (again, while it polls) and checks its output.
func (env *scenarioEnv) runStep(ctx context.Context, nd *node, st scenarioStep, s *scenarioState) error {
	args, err := s.expand(st.args)
	if err != nil {
		return err
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		r, err := env.run(ctx, nd, env.users[st.user], args)
		if err != nil {
			return fmt.Errorf("%w%s", err, deadControllers(env.nodes))
		}
		var checkErr error
		switch {
		case st.wantFail && r.code == 0:
			return fmt.Errorf("%s succeeded, but this step expects it to fail; stdout:\n%s", r.desc, clip(r.stdout))
		case st.wantFail:
			checkErr = st.check(r.stderr, s)
		case r.code != 0:
			return fmt.Errorf("%s exited with status %d; stderr:\n%s%s", r.desc, r.code, clip(r.stderr), deadControllers(env.nodes))
		default:
			checkErr = st.check(r.stdout, s)
		}
		if checkErr == nil {
			return nil
		}
		out := r.stdout
		if st.wantFail {
			out = r.stderr
		}
		if st.poll == 0 || st.wantFail {
			return fmt.Errorf("%s: wrong output: %w\noutput:\n%s", r.desc, checkErr, clip(out))
		}
		if time.Since(start) > st.poll {
			return fmt.Errorf("%s: output still wrong after %s (%d attempts): %w\nlast output:\n%s",
				r.desc, st.poll, attempt, checkErr, clip(out))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: gave up polling: %w (last check: %v)", r.desc, ctx.Err(), checkErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// run runs the openstack CLI once; an error means it could not be run or
// did not finish in time, not that it exited non-zero.
func (env *scenarioEnv) run(ctx context.Context, nd *node, cr scenarioCreds, args []string) (cliRun, error) {
	timeout := env.cmdTimeout
	if timeout == 0 {
		timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args = append(slices.Clone(env.globalArgs), args...)
	r := cliRun{desc: fmt.Sprintf("openstack %s (as %s on %s)", strings.Join(args, " "), cr.user, nd.name)}
	base := oscCmd(nd, cr.user, cr.password, cr.project, args...) // the environment of every CLI test
	cmd := exec.CommandContext(ctx, base.Path, args...)
	cmd.Env = base.Env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r.stdout, r.stderr = stdout.Bytes(), stderr.Bytes()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, fmt.Errorf("%s did not finish within %s; stderr so far:\n%s", r.desc, timeout, clip(r.stderr))
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	case err != nil:
		return r, fmt.Errorf("run %s: %w", r.desc, err)
	}
	if env.logf != nil {
		env.logf("%s: exit %d after %s", r.desc, r.code, time.Since(start).Round(time.Millisecond))
	}
	return r, nil
}

// deadControllers names the controllers that have exited, to explain a
// failed command.
func deadControllers(nodes []*node) string {
	var b strings.Builder
	for _, nd := range nodes {
		if !nd.running() {
			fmt.Fprintf(&b, "\n(controller %s has exited: %v)", nd.name, nd.waitErr)
		}
	}
	return b.String()
}

// clip shortens output for an error message.
func clip(b []byte) string {
	const max = 4000
	if len(b) > max {
		return string(b[:max]) + fmt.Sprintf("\n... (%d more bytes)", len(b)-max)
	}
	return string(b)
}

// Output parsers and comparisons for checks. They return errors: checks
// never fail the test themselves.

// jsonObject parses `-f json` output of a show or create command.
func jsonObject(out []byte) (map[string]any, error) {
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("want a JSON object: %w", err)
	}
	return v, nil
}

// jsonRows parses `-f json` output of a list command.
func jsonRows(out []byte) ([]map[string]any, error) {
	var v []map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("want a JSON list of rows: %w", err)
	}
	return v, nil
}

// valueLines splits `-f value` output into its non-empty lines.
func valueLines(out []byte) []string {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// expectFields compares obj's fields with want and reports every
// difference. Go numbers in want match JSON numbers of the same value;
// nil wants a JSON null (or a missing field).
func expectFields(obj map[string]any, want map[string]any) error {
	var diffs []string
	for k, w := range want {
		if got := obj[k]; !reflect.DeepEqual(got, jsonValue(w)) {
			diffs = append(diffs, fmt.Sprintf("%s is %#v, want %#v", k, got, w))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	sort.Strings(diffs)
	return errors.New(strings.Join(diffs, "; "))
}

// jsonValue converts a Go value to what encoding/json decodes it to.
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("scenario: %#v in a check is not JSON: %v", v, err))
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// rowsBy indexes rows by the value of column col (ID or Name); a repeated
// value is an error.
func rowsBy(rows []map[string]any, col string) (map[string]map[string]any, error) {
	m := map[string]map[string]any{}
	for _, r := range rows {
		k := fmt.Sprint(r[col])
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("two rows with %s %q", col, k)
		}
		m[k] = r
	}
	return m, nil
}

// sameSet reports whether got and want hold the same strings in any order.
func sameSet(what string, got, want []string) error {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		return fmt.Errorf("%s are %q, want %q", what, got, want)
	}
	return nil
}

// noOutput is the check of a command that prints nothing when it works
// (stop, delete, role add): any output is a surprise worth a failure.
func noOutput(out []byte, _ *scenarioState) error {
	if len(bytes.TrimSpace(out)) > 0 {
		return errors.New("want no output")
	}
	return nil
}

// errorSays is the check of a step that expects a refusal: stderr must
// contain every part.
func errorSays(parts ...string) func([]byte, *scenarioState) error {
	return func(out []byte, _ *scenarioState) error {
		for _, p := range parts {
			if !bytes.Contains(out, []byte(p)) {
				return fmt.Errorf("the error does not say %q", p)
			}
		}
		return nil
	}
}

// waitCLIReady polls, as the admin on nd, until identity is bootstrapped
// and the default flavors exist and, with hosts > 0, until that many
// compute hosts have registered. It is setup, not part of a scenario.
func waitCLIReady(c *testCluster, nd *node, hosts int) {
	c.t.Helper()
	c.poll(30*time.Second, "identity bootstrapped and the default flavors created", func() (bool, string) {
		out, err := oscCmd(nd, "admin", adminPassword, "admin", "flavor", "list", "-f", "value", "-c", "Name").CombinedOutput()
		return err == nil && slices.Contains(valueLines(out), "m1.tiny"), string(out)
	})
	if hosts == 0 {
		return
	}
	c.poll(30*time.Second, fmt.Sprintf("%d compute hosts registered", hosts), func() (bool, string) {
		out, err := oscCmd(nd, "admin", adminPassword, "admin", "availability", "zone", "list", "--compute", "--long", "-f", "json").CombinedOutput()
		return err == nil && strings.Count(string(out), "nova-compute") == hosts, string(out)
	})
}

// The scenario runner is what stands between a wrong answer from Keel and a
// green `make test`: a failing command, a wrong output, a refusal that did
// not happen or happened for the wrong reason must each fail the scenario
// at exactly that step, and nothing after it may run. A correct scenario
// must pass, so the runner is not simply always failing.
func TestCLIScenarioCatchesABrokenStep(t *testing.T) {
	if _, err := os.Stat(openstackCLI); err != nil {
		t.Fatalf("%s is missing: run `make deps`", openstackCLI)
	}
	c := startCluster(t, 1)
	c.waitHealthy(c.nodes[0], 30*time.Second)
	waitCLIReady(c, c.nodes[0], 0)
	env := &scenarioEnv{
		nodes:      c.nodes,
		users:      map[scenarioUser]scenarioCreds{asAdmin: {"admin", adminPassword, "admin"}},
		globalArgs: []string{"--os-compute-api-version", "2.74"},
		cmdTimeout: 60 * time.Second,
		logf:       t.Logf,
	}

	// Good steps, and the broken versions of the second one.
	first := scenarioStep{
		name: "admin authenticates", user: asAdmin, args: []string{"token", "issue", "-f", "json"},
		check: func(out []byte, s *scenarioState) error {
			tok, err := jsonObject(out)
			if err != nil {
				return err
			}
			return s.save("admin_project", tok["project_id"])
		},
	}
	tiny := func(ram int) func([]byte, *scenarioState) error {
		return func(out []byte, _ *scenarioState) error {
			f, err := jsonObject(out)
			if err != nil {
				return err
			}
			return expectFields(f, map[string]any{"name": "m1.tiny", "ram": ram, "vcpus": 1})
		}
	}
	second := scenarioStep{name: "m1.tiny has 512 MB", user: asAdmin, args: []string{"flavor", "show", "m1.tiny", "-f", "json"}, check: tiny(512)}
	third := func(ran *bool) scenarioStep {
		return scenarioStep{
			name: "the admin project is listed", user: asAdmin, args: []string{"project", "show", "{admin_project}", "-f", "value", "-c", "name"},
			check: func(out []byte, _ *scenarioState) error {
				*ran = true
				if got := strings.TrimSpace(string(out)); got != "admin" {
					return fmt.Errorf("project name %q, want admin", got)
				}
				return nil
			},
		}
	}
	broken := func(mutate func(*scenarioStep)) scenarioStep {
		st := second
		mutate(&st)
		return st
	}
	cases := []struct {
		name   string
		second scenarioStep
		// wantErr: parts of the error (the step's name is always checked);
		// nil for the correct scenario.
		wantErr []string
	}{
		{"correct", second, nil},
		{"check expects the wrong value", broken(func(st *scenarioStep) {
			st.check = tiny(1024)
		}), []string{"wrong output", "ram is 512, want 1024"}},
		{"command exits non-zero", broken(func(st *scenarioStep) {
			st.args = []string{"flavor", "show", "no-such-flavor", "-f", "json"}
		}), []string{"exited with status 1", "No Flavor found for no-such-flavor"}},
		{"wrong argument", broken(func(st *scenarioStep) {
			st.args = []string{"flavor", "show", "--no-such-option", "m1.tiny", "-f", "json"}
		}), []string{"exited with status 2", "unrecognized arguments: --no-such-option"}},
		{"expected failure succeeds", broken(func(st *scenarioStep) {
			st.wantFail, st.check = true, errorSays("No flavor")
		}), []string{"succeeded, but this step expects it to fail"}},
		{"failure for the wrong reason", broken(func(st *scenarioStep) {
			st.args = []string{"flavor", "show", "no-such-flavor"}
			st.wantFail, st.check = true, errorSays("Quota exceeded")
		}), []string{`the error does not say "Quota exceeded"`}},
		{"poll gives up", broken(func(st *scenarioStep) {
			st.check, st.poll = tiny(64), 500*time.Millisecond
		}), []string{"output still wrong after 500ms", "ram is 512, want 64"}},
		{"unknown placeholder", broken(func(st *scenarioStep) {
			st.args = []string{"flavor", "show", "{no_such_key}"}
		}), []string{"no_such_key, which no earlier step saved"}},
		{"no check", broken(func(st *scenarioStep) { st.check = nil }), []string{"malformed scenario: the step has no check"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var thirdRan bool
			steps := []scenarioStep{first, tc.second, third(&thirdRan)}
			err := runScenario(t.Context(), env, steps)
			if tc.wantErr == nil {
				if err != nil || !thirdRan {
					t.Fatalf("the correct scenario: %v (last step ran: %v)", err, thirdRan)
				}
				return
			}
			var se *stepError
			if !errors.As(err, &se) {
				t.Fatalf("runScenario returned %v, want a *stepError", err)
			}
			if se.index != 2 || se.step != tc.second.name {
				t.Fatalf("failed at step %d %q, want step 2 %q: %v", se.index, se.step, tc.second.name, err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
			if thirdRan {
				t.Errorf("the step after the broken one ran")
			}
		})
	}
}
