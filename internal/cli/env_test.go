package cli

import (
	"flag"
	"slices"
	"testing"
)

func TestApplyEnv(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var join StringList
	fs.Var(&join, "join", "")
	dir := fs.String("data-dir", "d", "")
	version := fs.Bool("version", false, "")
	name := fs.String("name", "", "")
	t.Setenv("KEEL_JOIN", "a:1, b:2")
	t.Setenv("KEEL_DATA_DIR", "/var/lib/keel")
	t.Setenv("KEEL_VERSION", "1.2.3") // a deployment's own variable, not --version
	t.Setenv("KEEL_NAME", "from-env")
	if err := fs.Parse([]string{"--name", "n1", "--join", "c:3,d:4"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyEnv(fs); err != nil {
		t.Fatal(err)
	}
	// A flag given on the command line wins over the environment.
	if !slices.Equal(join, []string{"c:3", "d:4"}) || *dir != "/var/lib/keel" || *version || *name != "n1" {
		t.Fatalf("join %q, data-dir %q, version %v, name %q", join, *dir, *version, *name)
	}
	fs2 := flag.NewFlagSet("t", flag.ContinueOnError)
	var j2 StringList
	fs2.Var(&j2, "join", "")
	fs2.Parse(nil)
	if err := ApplyEnv(fs2); err != nil || !slices.Equal(j2, []string{"a:1", "b:2"}) {
		t.Fatalf("join from KEEL_JOIN: %q %v", j2, err)
	}
}
