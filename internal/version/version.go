// Package version holds the version of the Keel binaries, set at link time
// with -ldflags "-X github.com/keel-cloud/keel/internal/version.Version=...".
package version

// Version of this build.
var Version = "0.1.0-dev"
