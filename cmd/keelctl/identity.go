package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// tokenRotateKeys is `keelctl token rotate-keys`.
func (a *app) tokenRotateKeys(args []string) error {
	fs := a.flags("token rotate-keys", "", "Make a new primary token signing key. Tokens signed by the previous keys stay valid until they expire.")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	out, err := c.call(context.Background(), http.MethodPost, "/internal/v1/token/rotate-keys", nil)
	if err != nil {
		return fmt.Errorf("rotate token keys: %w", err)
	}
	var res struct {
		PrimaryKey string `json:"primary_key"`
		Retain     int64  `json:"retired_keys_verify_for_seconds"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.PrimaryKey == "" {
		return fmt.Errorf("rotate token keys: unexpected answer %q", out)
	}
	fmt.Fprintf(a.stdout, "new primary token signing key: %s\nretired keys keep verifying tokens for %ds\n", res.PrimaryKey, res.Retain)
	return nil
}

// openrc is `keelctl openrc`: the OS_* environment of the admin user, checked
// by issuing a token with it.
func (a *app) openrc(args []string) error {
	fs := a.flags("openrc", "", "Print the OS_* environment for the cloud's admin user (eval it in a shell).\n"+
		"The password comes from --password, else $KEEL_ADMIN_PASSWORD, else the file\n"+
		"$KEEL_ADMIN_PASSWORD_FILE or ./keel-data/admin-password (written when it was generated).")
	password := fs.String("password", "", "the admin user's password")
	user := fs.String("user", "admin", "user name")
	project := fs.String("project", "admin", "project name")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	pw, err := adminPassword(*password)
	if err != nil {
		return err
	}
	base, err := normalizeURL(a.g.url)
	if err != nil {
		return err
	}
	authURL := base + "/identity/v3"
	if err := checkLogin(a, authURL, *user, pw, *project); err != nil {
		return err
	}
	for _, kv := range [][2]string{
		{"OS_AUTH_URL", authURL}, {"OS_IDENTITY_API_VERSION", "3"}, {"OS_AUTH_TYPE", "password"},
		{"OS_USERNAME", *user}, {"OS_PASSWORD", pw}, {"OS_USER_DOMAIN_NAME", "Default"},
		{"OS_PROJECT_NAME", *project}, {"OS_PROJECT_DOMAIN_NAME", "Default"},
		{"OS_REGION_NAME", "RegionOne"}, {"OS_INTERFACE", "public"},
		// The CLI defaults to compute 2.1, where `--nic none` does not
		// exist yet (2.37); 2.74 is a version the e2e tests drive.
		{"OS_COMPUTE_API_VERSION", "2.74"},
	} {
		fmt.Fprintf(a.stdout, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return nil
}

func adminPassword(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if pw := os.Getenv("KEEL_ADMIN_PASSWORD"); pw != "" {
		return pw, nil
	}
	path := os.Getenv("KEEL_ADMIN_PASSWORD_FILE")
	if path == "" {
		path = "keel-data/admin-password"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("no admin password: give --password, set KEEL_ADMIN_PASSWORD, or point KEEL_ADMIN_PASSWORD_FILE at the admin-password file a controller wrote when it generated one (%v)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// checkLogin issues a token with the credentials, so a wrong password is
// reported now and not by the next openstack command.
func checkLogin(a *app, authURL, user, password, project string) error {
	body, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "domain": map[string]string{"id": "default"}, "password": password},
		}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]string{"id": "default"}}},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), a.g.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, authURL+"/auth/tokens?nocatalog", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the identity API at %s: %w (check --url)", authURL, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusCreated:
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		return errors.New("the identity API refused these credentials: wrong password, or the user has no role on the project")
	}
	return fmt.Errorf("issuing a token at %s failed: HTTP %d", authURL, resp.StatusCode)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
