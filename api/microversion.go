package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Microversion is a compute API version X.Y.
type Microversion struct{ Major, Minor int }

// The range of compute microversions Keel serves. A request without a
// version header gets MinVersion. MaxVersion is the highest version whose
// behaviour Keel honours for every endpoint it serves.
var (
	MinVersion = Microversion{2, 1}
	MaxVersion = Microversion{2, 100}
)

func (v Microversion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v >= major.minor: handlers branch on it.
func (v Microversion) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// Less reports whether v < o.
func (v Microversion) Less(o Microversion) bool { return !v.AtLeast(o.Major, o.Minor) }

// Headers of microversion negotiation.
const (
	versionHeader       = "OpenStack-API-Version"
	legacyVersionHeader = "X-OpenStack-Nova-API-Version"
)

// ParseMicroversion parses "X.Y" or "latest" (which means MaxVersion).
func ParseMicroversion(s string) (Microversion, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "latest") {
		return MaxVersion, nil
	}
	maj, min, ok := strings.Cut(s, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if !ok || err1 != nil || err2 != nil || a < 1 || b < 0 || !canonicalInt(maj) || !canonicalInt(min) {
		return Microversion{}, fmt.Errorf("API Version String %s is of invalid format. Must be of format MajorNum.MinorNum.", s)
	}
	return Microversion{a, b}, nil
}

func canonicalInt(s string) bool {
	return s != "" && (s == "0" || s[0] != '0') && strings.Trim(s, "0123456789") == ""
}

// requestedMicroversion returns the compute version a request asks for:
// the OpenStack-API-Version header ("compute X.Y", possibly among other
// services, comma-separated) wins over the legacy header; neither means
// MinVersion. A malformed version is a 400; one outside the served range a
// 406, both with Nova's messages.
func requestedMicroversion(h http.Header) (Microversion, *Error) {
	raw, found := "", false
	for _, line := range h.Values(versionHeader) {
		for _, part := range strings.Split(line, ",") {
			svc, ver, ok := strings.Cut(strings.TrimSpace(part), " ")
			if ok && strings.EqualFold(svc, "compute") {
				raw, found = ver, true
			}
		}
	}
	if !found {
		if v := h.Get(legacyVersionHeader); v != "" {
			raw, found = v, true
		}
	}
	if !found {
		return MinVersion, nil
	}
	v, err := ParseMicroversion(raw)
	if err != nil {
		return Microversion{}, badRequest("%s", err.Error())
	}
	if v.Less(MinVersion) || MaxVersion.Less(v) {
		return Microversion{}, Errorf(http.StatusNotAcceptable,
			"Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, MinVersion, MaxVersion)
	}
	return v, nil
}

// setVersionHeaders echoes the negotiated version, as Nova does on every
// compute response (faults included).
func setVersionHeaders(h http.Header, v Microversion) {
	h.Set(versionHeader, "compute "+v.String())
	h.Set(legacyVersionHeader, v.String())
	h.Add("Vary", versionHeader)
	h.Add("Vary", legacyVersionHeader)
}
