package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

// testRegistryVersion checks that RegistryVersion moves after every change to
// the providers and to the health that assigning streams depends on (status,
// last success), and not after a health change that leaves both alone.
func testRegistryVersion(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	moved := func(what string, change func() error) {
		t.Helper()
		v := s.RegistryVersion()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if s.RegistryVersion() == v {
			t.Errorf("RegistryVersion did not change after %s", what)
		}
	}
	moved("CreateProvider", func() error { return s.CreateProvider(ctx, AgoraProvider(t, "a"), audit("provider.create")) })
	moved("CreateProvider", func() error { return s.CreateProvider(ctx, AgoraProvider(t, "b"), audit("provider.create")) })
	moved("UpdateProvider", func() error {
		_, _, err := s.UpdateProvider(ctx, "a", func(p switchboard.Provider) (switchboard.Provider, error) {
			p.MaxActiveStreams = 7
			return p, nil
		}, audit("provider.update"))
		return err
	})
	moved("ReorderProviders", func() error { return s.ReorderProviders(ctx, []string{"b", "a"}, audit("provider.reorder")) })
	at := t0.Add(time.Hour)
	moved("RecordCheck that succeeded", func() error {
		_, _, err := s.RecordCheck(ctx, "a", switchboard.ProbeResult{At: at, OK: true, Latency: time.Millisecond},
			func(h switchboard.Health) switchboard.Health {
				h.LastSuccess = &at
				return h
			})
		return err
	})
	moved("UpdateHealth that changed the status", func() error {
		_, _, err := s.UpdateHealth(ctx, "a", at, func(h switchboard.Health) switchboard.Health {
			h.Status = switchboard.StatusCritical
			return h
		})
		return err
	})
	v := s.RegistryVersion()
	if _, _, err := s.UpdateHealth(ctx, "a", at, func(h switchboard.Health) switchboard.Health {
		h.TotalRequests++
		h.FailedRequests++
		return h
	}); err != nil {
		t.Fatal(err)
	}
	if s.RegistryVersion() != v {
		t.Errorf("RegistryVersion changed after a health change that leaves status and last success alone")
	}
	moved("DeleteProvider", func() error { return s.DeleteProvider(ctx, "b", audit("provider.delete")) })
}
