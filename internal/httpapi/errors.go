package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/switchboardhq/switchboard"
)

// statuses maps each domain error code to its HTTP status. It is the only
// place where that mapping lives; a code it does not list is a 500.
var statuses = map[string]int{
	switchboard.EInvalid:          http.StatusBadRequest,
	switchboard.EUnauthorized:     http.StatusUnauthorized,
	switchboard.EForbidden:        http.StatusForbidden,
	switchboard.EPasswordChange:   http.StatusForbidden,
	switchboard.ENotFound:         http.StatusNotFound,
	switchboard.EMethodNotAllowed: http.StatusMethodNotAllowed,
	switchboard.EConflict:         http.StatusConflict,
	switchboard.ETooLarge:         http.StatusRequestEntityTooLarge,
	switchboard.EUnsupportedType:  http.StatusUnsupportedMediaType,
	switchboard.ERateLimited:      http.StatusTooManyRequests,
	switchboard.EUnavailable:      http.StatusServiceUnavailable,
}

// statusOf maps a domain error code to its HTTP status.
func statusOf(code string) int {
	if status, ok := statuses[code]; ok {
		return status
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// statusClientClosed is the status logs and metrics record for a request
// whose client went away before its answer (nginx's 499); nothing reaches the
// client.
const statusClientClosed = 499

// writeError answers err as the JSON error envelope. Errors without a code are
// logged with the request id and answered as an internal error without the cause.
// An error caused by the client going away is no fault of the server: it is
// logged at debug level and counted, and nothing is written.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if clientGone(r, err) {
		s.logger.DebugContext(r.Context(), "request cancelled by the client", "request_id", requestID(r.Context()), "method", r.Method, "route", r.Pattern, "err", err.Error())
		s.metrics.cancelled.WithLabelValues(r.Pattern).Inc()
		w.WriteHeader(statusClientClosed)
		return
	}
	var e *switchboard.Error
	if !errors.As(err, &e) {
		s.logger.ErrorContext(r.Context(), "internal error", "request_id", requestID(r.Context()), "method", r.Method, "route", r.Pattern, "err", err.Error())
		e = &switchboard.Error{Code: switchboard.EInternal, Message: "internal error (request id " + requestID(r.Context()) + ")"}
	}
	status := statusOf(e.Code)
	if status >= 500 && e.Code != switchboard.EInternal {
		s.logger.WarnContext(r.Context(), "request failed", "request_id", requestID(r.Context()), "route", r.Pattern, "code", e.Code, "message", e.Message)
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Field: e.Field}})
}

// clientGone reports whether err is the cancellation of the request by its
// client (the store wraps it: "get stream: context canceled"). Both must
// hold: a context.Canceled from the server's own work, or a deadline it set
// itself, while the client still waits, stays an internal error.
func clientGone(r *http.Request, err error) bool {
	return errors.Is(err, context.Canceled) && errors.Is(r.Context().Err(), context.Canceled)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	writeJSONBytes(w, status, append(b, '\n'))
}

// noSniff is the X-Content-Type-Options header value of a JSON answer,
// shared like jsonContentType: net/http copies the values when it writes the
// header.
var noSniff = []string{"nosniff"}

// writeJSONBytes writes body, a JSON document and its newline, with status.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// maxBody is the largest request body accepted.
const maxBody = 1 << 20

func errTooLarge() error {
	return switchboard.Errorf(switchboard.ETooLarge, "request body exceeds %d bytes", maxBody)
}

// decode reads a JSON request body into v strictly: application/json only, at
// most 1 MiB, no unknown fields, no trailing data. Its errors name the field.
func decode(r *http.Request, v any) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return &switchboard.Error{Code: switchboard.EUnsupportedType, Message: "request body must be application/json"}
	}
	if r.ContentLength > maxBody {
		return errTooLarge()
	}
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return jsonError(err)
	}
	return decodeJSON(data, v)
}

// limitParam reads the optional query parameter limit, an integer from 1 to
// most; def when it is absent.
func limitParam(q url.Values, def, most int) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, switchboard.Invalid("limit", "must be an integer from 1 to %d", most)
	}
	return n, nil
}

// beforeParam reads the optional ?before= of a paginated list: a positive id
// (0 when absent); what names the kind of id in the error.
func beforeParam(q url.Values, what string) (int64, error) {
	v := q.Get("before")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, switchboard.Invalid("before", "must be a positive %s id", what)
	}
	return n, nil
}

// decodeJSON is the strict JSON decoder behind decode, separate for fuzzing.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			// encoding/json names the unknown key but not where it is: find its path.
			var generic any
			if json.Unmarshal(data, &generic) == nil {
				if path := unknownField(generic, reflect.TypeOf(v), ""); path != "" {
					return unknownFieldError(path)
				}
			}
		}
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return switchboard.Invalid("body", "must hold exactly one JSON value")
	}
	return nil
}

// unknownField returns the dotted path of the first key in v that the type t
// does not declare, or "".
func unknownField(v any, t reflect.Type, prefix string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	join := func(k string) string {
		if prefix == "" {
			return fieldName(k)
		}
		return prefix + "." + fieldName(k)
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		fields := map[string]reflect.Type{}
		collectFields(t, fields)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				for name, typ := range fields { // encoding/json matches names case-insensitively
					if strings.EqualFold(name, k) {
						ft, ok = typ, true
						break
					}
				}
			}
			if !ok {
				return join(k)
			}
			if p := unknownField(obj[k], ft, join(k)); p != "" {
				return p
			}
		}
	case reflect.Map:
		if obj, ok := v.(map[string]any); ok {
			for k, x := range obj {
				if p := unknownField(x, t.Elem(), join(k)); p != "" {
					return p
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if arr, ok := v.([]any); ok {
			for i, x := range arr {
				if p := unknownField(x, t.Elem(), fmt.Sprintf("%s[%d]", prefix, i)); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

// collectFields maps the JSON names of t's fields, embedded ones included, to
// their types.
func collectFields(t reflect.Type, out map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, out)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
}

// emptyField is how an empty JSON key is named in an error's field and
// message: quoted, so that it shows rather than vanishes.
const emptyField = `""`

// fieldName is a JSON key as an error names it: the key itself, or
// emptyField when it is empty.
func fieldName(k string) string {
	if k == "" {
		return emptyField
	}
	return k
}

// unknownFieldError is the error for a key the body's type does not declare,
// at path. The message names the field too when it is an empty key, which a
// reader would otherwise not see.
func unknownFieldError(path string) error {
	if strings.Contains(path, emptyField) {
		return switchboard.Invalid(path, "unknown field %s: a key must not be empty", path)
	}
	return switchboard.Invalid(path, "unknown field")
}

func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return errTooLarge()
	case errors.As(err, &syn):
		return switchboard.Invalid("body", "malformed JSON at byte %d", syn.Offset)
	case errors.Is(err, io.EOF):
		return switchboard.Invalid("body", "request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return switchboard.Invalid("body", "malformed JSON: unexpected end")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		if typ.Type == reflect.TypeFor[switchboard.Duration]() {
			return switchboard.Invalid(field, "must be a duration string such as \"5m\" or \"30s\"")
		}
		if typ.Type == reflect.TypeFor[switchboard.Time]() {
			return switchboard.Invalid(field, "must be an RFC 3339 time such as \"2026-12-04T15:04:05Z\"")
		}
		return switchboard.Invalid(field, "must be %s", jsonKind(typ.Type.Kind().String()))
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return unknownFieldError(fieldName(strings.TrimSuffix(strings.TrimPrefix(f, `"`), `"`)))
	}
	// Errors from a field's UnmarshalJSON (e.g. a duration) do not carry the field
	// name in encoding/json v1; they are reported against the body with their text,
	// which never quotes the input value.
	return switchboard.Invalid("body", "%s", sanitize(msg))
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int64", "int32", "uint32", "uint64", "float64":
		return "a number in range"
	case "slice":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "of type " + k
}

func sanitize(s string) string {
	return switchboard.Truncate(strings.TrimPrefix(s, "json: "), 200)
}
