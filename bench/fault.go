package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// HTTPError is an error answer of the cloud: the status and the fault body
// Nova ({"itemNotFound": {"code": 404, "message": "..."}}), Keystone
// ({"error": {...}}) or Glance sent.
type HTTPError struct {
	Method, URL string
	Status      int
	// Kind is the fault body's key (itemNotFound, conflictingRequest,
	// computeFault...), empty when the body was not a fault.
	Kind    string
	Message string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.Status)
	if e.Kind != "" {
		s += " " + e.Kind
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// parseFault reads an OpenStack fault body: one top-level key whose value
// has a "message" (Nova, Keystone), or Glance's plain text.
func parseFault(body []byte) (kind, message string) {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) == nil {
		for k, raw := range top {
			var f struct {
				Message string `json:"message"`
				Title   string `json:"title"`
			}
			if json.Unmarshal(raw, &f) == nil && (f.Message != "" || f.Title != "") {
				if f.Message == "" {
					f.Message = f.Title
				}
				return k, f.Message
			}
		}
		if m, ok := top["message"]; ok {
			var s string
			if json.Unmarshal(m, &s) == nil {
				return "", s
			}
		}
	}
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, "<") { // an HTML error page: its text is noise
		s = stripTags(s)
	}
	return "", truncate(s, 300)
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

func stripTags(s string) string {
	return strings.Join(strings.Fields(tagRE.ReplaceAllString(s, " ")), " ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// WaitError is a wait that did not end in the wanted state: the server went
// to ERROR, or the state was not reached in time.
type WaitError struct {
	ServerID string
	Want     string // ACTIVE, SHUTOFF, gone
	// Status and TaskState last seen.
	Status, TaskState string
	// Fault is the server's fault message (status ERROR).
	Fault   string
	Timeout bool
	After   string // the wait's timeout, for the message
}

func (e *WaitError) Error() string {
	if e.Timeout {
		task := ""
		if e.TaskState != "" {
			task = ", task " + e.TaskState
		}
		return fmt.Sprintf("server %s did not become %s within %s (last status %s%s): raise --timeout if the cloud is just slow",
			e.ServerID, e.Want, e.After, e.Status, task)
	}
	msg := e.Fault
	if msg == "" {
		msg = "no fault message"
	}
	return fmt.Sprintf("server %s went to ERROR while waiting for %s: %s", e.ServerID, e.Want, msg)
}

// faultKey is what groups equal failures: "HTTP 409 conflictingRequest:
// Cannot 'stop' instance <uuid> while it is in vm_state stopped", with ids
// blanked.
func faultKey(err error) string {
	var he *HTTPError
	var we *WaitError
	switch {
	case errors.As(err, &he):
		s := fmt.Sprintf("HTTP %d", he.Status)
		if he.Kind != "" {
			s += " " + he.Kind
		}
		if he.Message != "" {
			s += ": " + NormalizeFault(he.Message)
		}
		return s
	case errors.As(err, &we):
		if we.Timeout {
			return fmt.Sprintf("timeout: not %s within %s (last status %s)", we.Want, we.After, we.Status)
		}
		return "status ERROR: " + NormalizeFault(we.Fault)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout: no answer within --http-timeout"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	var ue *url.Error
	if errors.As(err, &ue) { // drop the method and URL: the cause is the fault
		err = ue.Err
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout: no answer within --http-timeout"
		}
		return "network: " + NormalizeFault(err.Error())
	}
	return NormalizeFault(err.Error())
}

var (
	uuidRE = regexp.MustCompile(`(?i)\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b`)
	// hex ids (request ids, image checksums, ...) of 16 digits and more
	hexRE = regexp.MustCompile(`(?i)\b[0-9a-f]{16,}\b`)
	numRE = regexp.MustCompile(`\b\d+\b`)
)

// NormalizeFault blanks what differs between equal faults so they group:
// uuids become <uuid>, long hex ids <id>, stand-alone numbers N (counts in
// quota messages, ports, integer ids); whitespace is collapsed and the
// message cut at 200 bytes.
func NormalizeFault(msg string) string {
	msg = uuidRE.ReplaceAllString(msg, "<uuid>")
	msg = hexRE.ReplaceAllString(msg, "<id>")
	msg = numRE.ReplaceAllString(msg, "N")
	msg = strings.Join(strings.Fields(msg), " ")
	return truncate(msg, 200)
}
