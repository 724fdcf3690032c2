package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
)

// Error is an API error with its HTTP status. Handlers return it (or any
// error); faultFor turns every error into one, in one place.
type Error struct {
	Status  int
	Message string
	// Header holds extra response headers (Allow, WWW-Authenticate, ...).
	Header http.Header
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an API error.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// Common errors.
func badRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, format, args...)
}
func notFound(format string, args ...any) *Error { return Errorf(http.StatusNotFound, format, args...) }
func forbidden(format string, args ...any) *Error {
	return Errorf(http.StatusForbidden, format, args...)
}
func conflict(format string, args ...any) *Error { return Errorf(http.StatusConflict, format, args...) }

// unauthorized is Keystone's (and keystonemiddleware's) 401.
func unauthorized(msg string) *Error {
	if msg == "" {
		msg = "The request you have made requires authentication."
	}
	return &Error{Status: http.StatusUnauthorized, Message: msg}
}

// faultFor maps any error to the API error the client sees. Typed errors of
// fsm and cluster map to their status; anything else is a 500 whose message
// points at the request id (the log has the cause).
func faultFor(err error, requestID string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if fe, ok := fsm.AsError(err); ok {
		switch fe.Kind {
		case fsm.KindInvalid:
			return badRequest("%s", fe.Message)
		case fsm.KindNotFound:
			return notFound("%s", fe.Message)
		case fsm.KindConflict:
			return conflict("%s", fe.Message)
		case fsm.KindQuota, fsm.KindForbidden:
			return forbidden("%s", fe.Message)
		}
	}
	switch {
	case errors.Is(err, cluster.ErrNoLeader), errors.Is(err, cluster.ErrShutdown):
		return Errorf(http.StatusServiceUnavailable, "%s", err.Error())
	case errors.Is(err, cluster.ErrOutcomeUnknown):
		return Errorf(http.StatusServiceUnavailable, "%s", err.Error())
	case errors.Is(err, cluster.ErrUpgradeIncomplete):
		// 409, not 503: the request conflicts with the cluster's state
		// (a controller still runs an older binary) until an operator
		// finishes the upgrade, which takes minutes to hours. A 503 would
		// say "retry in a moment": clients and load balancers would
		// retry in vain, and every controller answers the same.
		return conflict("%s", err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return Errorf(http.StatusServiceUnavailable, "The cluster did not answer in time; retry the request (request %s).", requestID)
	}
	return Errorf(http.StatusInternalServerError,
		"Unexpected API Error. The controller log has the details under request id %s.", requestID)
}

// novaFaultNames are the keys Nova wraps a fault in, by status; any other
// status is a "computeFault".
var novaFaultNames = map[int]string{
	400: "badRequest",
	401: "unauthorized",
	403: "forbidden",
	404: "itemNotFound",
	405: "badMethod",
	409: "conflictingRequest",
	413: "overLimit",
	415: "badMediaType",
	429: "overLimit",
	501: "notImplemented",
	503: "serviceUnavailable",
}

// NovaFaultName returns the key of Nova's fault body for a status.
func NovaFaultName(status int) string {
	if n, ok := novaFaultNames[status]; ok {
		return n
	}
	return "computeFault"
}

// faultBody renders e in the style of the service the request was for.
func faultBody(svc Service, e *Error) any {
	switch svc {
	case ServiceIdentity:
		// Keystone's (and keystonemiddleware's) error document.
		return map[string]any{"error": map[string]any{
			"code": e.Status, "message": e.Message, "title": http.StatusText(e.Status),
		}}
	default:
		return map[string]any{NovaFaultName(e.Status): map[string]any{
			"code": e.Status, "message": e.Message,
		}}
	}
}
