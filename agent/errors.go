package agent

import (
	"github.com/ocm-agent/ocm-agent/control"
	"net/http"

	"github.com/ocm-agent/ocm-agent/ocm"
)

// Error is an agent decision that the receiver and control API turn into
// an HTTP status; Message is safe to show to the peer or user.
type Error struct {
	Status     int
	Message    string
	Validation ocm.ValidationErrors
}

func (e *Error) Error() string { return e.Message }

// HTTPStatus is the status code the error maps to.
func (e *Error) HTTPStatus() int { return e.Status }

// ValidationErrors gives the per-field problems, if any.
func (e *Error) ValidationErrors() []ocm.ValidationError { return e.Validation }

func errorf(status int, msg string) *Error { return &Error{Status: status, Message: msg} }

func invalid(name, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Message: "INVALID_PARAMETERS", Validation: ocm.ValidationErrors{{Name: name, Message: msg}}}
}

// ErrNotFound and ErrConflict classify control API failures.
var (
	ErrNotFound = control.ErrNotFound
	ErrConflict = control.ErrConflict
)
