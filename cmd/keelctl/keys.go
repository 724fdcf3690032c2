package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/keel-cloud/keel/internal/clusterauth"
)

// defaultKeyFile is where a single-node controller started without
// --cluster-key writes the key it generates (with the default --data-dir).
const defaultKeyFile = "keel-data/cluster.key"

// keygen prints a new random 32-byte cluster key, base64.
func (a *app) keygen(args []string) error {
	fset := a.flags("keygen", "", "print a new random cluster key")
	if _, err := parseArgs(fset, args, 0); err != nil {
		return err
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, key)
	return nil
}

func newKey() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("read random bytes for the key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// key returns the cluster key: --cluster-key (or KEEL_CLUSTER_KEY), else the
// file named by --cluster-key-file (or KEEL_CLUSTER_KEY_FILE), else
// ./keel-data/cluster.key if it exists.
func (g *globals) key() ([]byte, error) {
	if g.clusterKey != "" {
		k, err := clusterauth.ParseKey(strings.TrimSpace(g.clusterKey))
		if err != nil {
			return nil, fmt.Errorf("--cluster-key: %w", err)
		}
		return k, nil
	}
	path, explicit := g.clusterKeyFile, true
	if path == "" {
		path, explicit = defaultKeyFile, false
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil, errors.New("no cluster key: set --cluster-key or KEEL_CLUSTER_KEY to the key the controllers share " +
			"(or --cluster-key-file / KEEL_CLUSTER_KEY_FILE to a file holding it; a single-node controller writes one to <data-dir>/cluster.key)")
	}
	if err != nil {
		return nil, fmt.Errorf("read the cluster key file: %w (set --cluster-key-file / KEEL_CLUSTER_KEY_FILE, or pass --cluster-key)", err)
	}
	k, err := clusterauth.ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("cluster key file %s: %w", path, err)
	}
	return k, nil
}
