package clientspec

import (
	"errors"
	"fmt"
)

// InvalidError is an operator mistake, worded for the operator.
type InvalidError struct {
	Msg string
	// Public, when set, is Msg without a library's own words, for a
	// client that registered the setting (see detailError).
	Public string
}

func (e *InvalidError) Error() string { return e.Msg }

// public is the message a registering client may be shown.
func (e *InvalidError) PublicMsg() string {
	if e.Public != "" {
		return e.Public
	}
	return e.Msg
}

// invalidCause is invalid for a problem found by a library: the operator
// reads its words, a client only ours (prefix: err's public text).
func invalidCause(prefix string, err error) error {
	return &InvalidError{Msg: prefix + err.Error(), Public: prefix + PublicText(err)}
}

// detailError is an error of ours with a library's error behind it.
// Error has both, for logs and operators; PublicText only ours, for
// clients: a library's message describes its internals, not the request.
type detailError struct {
	msg   string
	cause error
}

func (e *detailError) Error() string { return e.msg + ": " + e.cause.Error() }

func (e *detailError) Unwrap() error { return e.cause }

// PublicText is err as a client may read it.
func PublicText(err error) string {
	var d *detailError
	if errors.As(err, &d) {
		return d.msg
	}
	return err.Error()
}

func Invalidf(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// FieldError is an operator mistake in one field of a spec, named by its
// config key. It is also an *InvalidError, worded with the field.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

func (e *FieldError) Unwrap() error { return &InvalidError{Msg: e.Error()} }

func badField(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}
