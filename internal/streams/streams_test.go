package streams

import (
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

func TestStartRequestValidate(t *testing.T) {
	ok := StartRequest{Room: "room-1", UserID: "u1", Role: "publisher"}
	if err := ok.Validate(); err != nil || ok.Quality != sb.QualityHD {
		t.Fatalf("valid request: %v, quality %q (want hd by default)", err, ok.Quality)
	}
	tests := []struct {
		name  string
		req   StartRequest
		field string
	}{
		{"no room", StartRequest{UserID: "u", Role: "publisher"}, "room"},
		{"room with space", StartRequest{Room: "a b", UserID: "u", Role: "publisher"}, "room"},
		{"room too long", StartRequest{Room: string(make([]byte, 65)), UserID: "u", Role: "publisher"}, "room"},
		{"no user", StartRequest{Room: "r", Role: "publisher"}, "userId"},
		{"bad role", StartRequest{Room: "r", UserID: "u", Role: "host"}, "role"},
		{"bad region", StartRequest{Room: "r", UserID: "u", Role: "subscriber", Region: "US East"}, "region"},
		{"bad quality", StartRequest{Room: "r", UserID: "u", Role: "subscriber", Quality: "4k"}, "quality"},
		{"bad exclude", StartRequest{Room: "r", UserID: "u", Role: "subscriber", Exclude: []string{"ok", "Not-OK"}}, "exclude[1]"},
		{"bad key", StartRequest{Room: "r", UserID: "u", Role: "subscriber", IdempotencyKey: "has space"}, "idempotencyKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate()
			e, isErr := err.(*sb.Error)
			if !isErr || e.Code != sb.EInvalid || e.Field != tt.field {
				t.Fatalf("Validate = %v, want invalid %s", err, tt.field)
			}
		})
	}
}

// TestFailureWindow: the threshold of reported failures within the window
// triggers one immediate check, then counting starts afresh; old failures
// fall out of the window.
func TestFailureWindow(t *testing.T) {
	s := New(Config{FailureThreshold: 3, FailureWindow: 10 * time.Second})
	t0 := time.Unix(1_000_000, 0)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, false}, {time.Second, false}, {2 * time.Second, true}, // third within 10 s
		{3 * time.Second, false}, {4 * time.Second, false}, // a fresh window
		{20 * time.Second, false}, // the two before fell out
		{21 * time.Second, false}, {22 * time.Second, true},
	}
	for i, st := range steps {
		if got := s.noteFailure("agora", t0.Add(st.at)); got != st.want {
			t.Fatalf("step %d at %v: trigger %v, want %v", i, st.at, got, st.want)
		}
	}
	if s.noteFailure("zego", t0) {
		t.Fatal("providers share a window")
	}
}
