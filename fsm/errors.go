package fsm

import (
	"errors"
	"fmt"
)

// Kind classifies why a command was refused. The API layer maps each kind to
// one Nova fault (see api's fault mapping); nothing else inspects messages.
type Kind uint8

const (
	// KindInvalid: the command is malformed, of an unknown type or version,
	// or its payload fails validation. Maps to 400 badRequest.
	KindInvalid Kind = iota + 1
	// KindNotFound: the command names a record that does not exist. 404.
	KindNotFound
	// KindConflict: the command is well formed but conflicts with current
	// state (a name taken, a wrong state for a transition). 409.
	KindConflict
	// KindQuota: applying the command would exceed a quota. 403 (Nova's
	// "Quota exceeded").
	KindQuota
	// KindForbidden: the caller may not do this to this record (an owner
	// lifting an administrator's lock). 403.
	KindForbidden
)

func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not found"
	case KindConflict:
		return "conflict"
	case KindQuota:
		return "quota exceeded"
	case KindForbidden:
		return "forbidden"
	case KindInternal:
		return "internal error"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is the typed error an applier returns to the proposer. It travels
// inside Response (across a forwarded proposal too), so it is plain data.
type Error struct {
	Kind    Kind   `json:"kind"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, ErrNotFound) true for every *Error of that kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is; compare kinds, never messages.
var (
	ErrInvalid  = &Error{Kind: KindInvalid}
	ErrNotFound = &Error{Kind: KindNotFound}
	ErrConflict = &Error{Kind: KindConflict}
	ErrQuota    = &Error{Kind: KindQuota}
)

// Errorf builds a typed error of kind k.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error when it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// KindInternal: a bug refused the command (an applier panicked). 500.
const KindInternal Kind = 100
