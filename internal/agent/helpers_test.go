package agent

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
)

func decodeBody(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }

func nopLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func equal(a, b []int) bool { return slices.Equal(a, b) }
