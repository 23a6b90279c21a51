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

// FuzzDecodeUserBodies feeds arbitrary bodies to the decoders of the users
// API and the password change: none may panic, every rejection is a coded
// 4xx error naming its field, and what is accepted follows the rules.
func FuzzDecodeUserBodies(f *testing.F) {
	for _, s := range []string{
		`{"username":"bob","role":"admin","password":"a-long-enough-password"}`,
		`{"username":"Bob","role":"client","password":"x"}`, `{"role":"superadmin"}`, `{"enabled":false}`,
		`{"password":"password1234"}`, `{"currentPassword":"a","newPassword":"b-long-enough-password"}`,
		`{"username":"a\u0000b"}`, `{"password":"\xff\xfe"}`, `{}`, `[]`, `null`, `{"role":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var c userCreate
		if err := decodeJSON(body, &c); err != nil {
			checkCoded(t, err)
		} else if u, err := c.validate(); err != nil {
			checkCoded(t, err)
		} else if !usernameRE.MatchString(u.Username) || u.Role < sb.RoleAdmin || !u.MustChangePassword || len(c.Password) < 12 {
			t.Fatalf("accepted an invalid user: %+v", u)
		}
		var up userUpdate
		if err := decodeJSON(body, &up); err != nil {
			checkCoded(t, err)
		} else if role, err := up.validate("bob"); err != nil {
			checkCoded(t, err)
		} else if up.Role != nil && role < sb.RoleAdmin {
			t.Fatalf("accepted role %v", role)
		}
		var pc passwordChange
		if err := decodeJSON(body, &pc); err != nil {
			checkCoded(t, err)
		} else if err := pc.validate("bob"); err != nil {
			checkCoded(t, err)
		} else if pc.NewPassword == pc.CurrentPassword || len(pc.NewPassword) < 12 {
			t.Fatalf("accepted a password change %q → %q", pc.CurrentPassword, pc.NewPassword)
		}
	})
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

// FuzzDecodeQuality feeds arbitrary bodies to the quality report decoder:
// none may panic, every rejection is a coded 4xx error naming its field, and
// an accepted report holds 1 to 60 samples with every value in range.
func FuzzDecodeQuality(f *testing.F) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{
		`{"samples":[{"at":"2026-12-05T11:59:50Z","rttMs":40,"packetLoss":0.01,"jitterMs":4,"bitrateKbps":900,"fps":30,"freezeCount":1,"freezeMs":200}]}`,
		`{"provider":"agora","samples":[{"at":"2026-12-05T12:00:00Z"}]}`, `{"samples":[]}`, `{"samples":null}`,
		`{"samples":[{"at":"2026-12-05T12:00:00Z","packetLoss":1.0000001}]}`, `{"samples":[{"at":"2026-12-04T11:00:00Z"}]}`,
		`{"samples":[{"at":"x"}]}`, `{"samples":[{"at":"2026-12-05T12:00:00Z","freezeCount":1.5}]}`,
		`{"samples":[{"at":"2026-12-05T12:00:00Z","rttMs":1e400}]}`, `{"samples":[{"at":"2026-12-05T12:00:00Z","fps":-0}]}`,
		`{"provider":"Bad","samples":[{"at":"2026-12-05T12:00:00Z"}]}`, `[]`, `null`, `{}`, `{"samples":[{}]}`, "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := decodeQuality(body, now)
		if err != nil {
			checkCoded(t, err)
			return
		}
		if len(rep.Samples) == 0 || len(rep.Samples) > sb.MaxQualitySamples {
			t.Fatalf("accepted %d samples", len(rep.Samples))
		}
		for _, s := range rep.Samples {
			if s.PacketLoss < 0 || s.PacketLoss > 1 || s.RTTMs < 0 || s.RTTMs > 60_000 || s.FreezeMs < 0 || s.FPS > 240 ||
				s.At.Before(now.Add(-sb.QualitySampleMaxAge)) || s.At.After(now.Add(sb.QualitySampleMaxSkew)) {
				t.Fatalf("accepted an out-of-range sample %+v", s)
			}
		}
		var tot sb.QualityTotals
		tot.Samples = int64(len(rep.Samples))
		if st := tot.Stats(); st.Score == nil || *st.Score < 0 || *st.Score > 100 {
			t.Fatalf("score %v out of 0-100", st.Score)
		}
	})
}
