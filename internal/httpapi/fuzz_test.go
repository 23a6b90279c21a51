package httpapi

import (
	"errors"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// FuzzDecodeProvider feeds arbitrary bodies to the provider decoder and to
// create and update: none may panic, every rejection is a coded 4xx error, and
// an accepted provider is valid.
func FuzzDecodeProvider(f *testing.F) {
	seeds := []string{
		`{"name":"agora","kind":"agora","config":{"appId":"970CA35de60c44645bbae8a215061b33"},"credentials":{"customerId":"a","customerSecret":"b"}}`,
		`{"name":"z","kind":"zegocloud","config":{"appId":"123"},"credentials":{"serverSecret":"0123456789abcdef0123456789abcdef"},"priority":2,"weight":3}`,
		`{"name":"lk","kind":"livekit","config":{"url":"http://127.0.0.1:7880"},"healthCheck":{"interval":"10s","timeout":"1s"}}`,
		`{"name":"h","kind":"http","config":{"url":"https://cdn.invalid/health","method":"HEAD","expectStatus":[200,204]},"credentials":{"headers":{"X-Key":"v"}}}`,
		`{"enabled":false}`, `{"priority":0}`, `{"healthCheck":{"interval":5}}`, `{"pricing":{"currency":"USD","perThousandMinutes":{"hd":1e308}}}`,
		`{"regions":["us",""]}`, `{"config":{"expectStatus":[99999999999999999999]}}`, `[]`, `null`, `{}`, `{"a":`, "\x00",
		`{"credentials":{"headers":{"Bad Name":"x"}}}`, `{"monthlyBudget":-0}`, `{"name":"x"} trailing`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	base := sb.Provider{Name: "agora", Kind: sb.KindAgora, Enabled: true, Config: sb.ProviderConfig{AppID: "970CA35de60c44645bbae8a215061b33"}}
	base.Normalize()
	if err := base.Validate(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in sb.ProviderInput
		if err := decodeJSON(body, &in); err != nil {
			checkCoded(t, err)
			return
		}
		if p, err := in.NewProvider(); err != nil {
			checkCoded(t, err)
		} else if err := p.Validate(); err != nil {
			t.Fatalf("NewProvider accepted an invalid provider: %v", err)
		}
		if p, err := in.ApplyTo(base); err != nil {
			checkCoded(t, err)
		} else if err := p.Validate(); err != nil {
			t.Fatalf("ApplyTo accepted an invalid provider: %v", err)
		}
	})
}

func checkCoded(t *testing.T, err error) {
	t.Helper()
	var e *sb.Error
	if !errors.As(err, &e) {
		t.Fatalf("uncoded error %v", err)
	}
	if statusOf(e.Code) >= 500 {
		t.Fatalf("client input produced a %d: %v", statusOf(e.Code), err)
	}
	if e.Code == sb.EInvalid && e.Field == "" {
		t.Fatalf("invalid without a field: %v", err)
	}
}

// FuzzDecodeMaintenance feeds arbitrary bodies to the maintenance window
// decoder: none may panic, every rejection is a coded 4xx error naming a
// field, and an accepted window is well formed.
func FuzzDecodeMaintenance(f *testing.F) {
	for _, s := range []string{
		`{"provider":"agora","end":"2026-06-01T00:00:00Z","reason":"upgrade"}`,
		`{"provider":"agora","start":"2026-05-31T23:00:00+02:00","end":"2026-06-01T00:00:00Z","reason":"r","drain":true,"drainRate":0.1}`,
		`{"provider":"a","end":"9999-12-31T23:59:59Z","reason":"x","drainRate":1e308}`, `{"drainRate":-0}`, `{"start":"0000-01-01T00:00:00Z"}`,
		`{"end":"2026-06-01T00:00:00.999999999Z","provider":"a","reason":"\u0000"}`, `[]`, `null`, `{}`, `{"a":`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 5, 31, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		var in sb.MaintenanceInput
		if err := decodeJSON(body, &in); err != nil {
			checkCoded(t, err)
			return
		}
		w, err := in.Window(now)
		if err != nil {
			checkCoded(t, err)
			return
		}
		if !sb.ValidSlug(w.Provider) || !w.End.After(w.Start) || !w.End.After(now) || w.Start.Before(now) || w.Reason == "" ||
			!(w.DrainRate >= sb.MinDrainRate && w.DrainRate <= sb.MaxDrainRate) || !sb.ValidMaintenanceID(w.ID) {
			t.Fatalf("Window accepted %s as %+v", body, w)
		}
	})
}
