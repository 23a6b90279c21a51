package switchboard

import (
	"errors"
	"fmt"
)

// Error codes. internal/httpapi maps each to an HTTP status in exactly one place.
const (
	EInvalid          = "invalid"            // 400
	EUnauthorized     = "unauthorized"       // 401
	EForbidden        = "forbidden"          // 403
	ENotFound         = "not_found"          // 404
	EMethodNotAllowed = "method_not_allowed" // 405
	EConflict         = "conflict"           // 409
	ETooLarge         = "too_large"          // 413
	EUnsupportedType  = "unsupported_type"   // 415
	ERateLimited      = "rate_limited"       // 429
	EUnavailable      = "unavailable"        // 503
	EInternal         = "internal"           // 500
)

// EPasswordChange (403) refuses every call but the change of its password to
// a session whose user must change a temporary password.
const EPasswordChange = "password_change_required"

// Error is a domain failure with a code, a message safe to show to the caller and,
// for invalid input, the field at fault. Its message never holds a secret.
type Error struct {
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return e.Code + ": " + e.Message
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EInvalid error naming field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or EInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EInternal
}

// IsCode reports whether err carries code.
func IsCode(err error, code string) bool { return err != nil && ErrorCode(err) == code }
