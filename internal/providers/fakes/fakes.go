// Package fakes runs the loopback fakes of Agora, ZEGOCLOUD and LiveKit
// together, registered as providers, for the demo and for tests that need a
// whole world of providers.
package fakes

import (
	"errors"
	"fmt"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/agora/agorafake"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/livekit"
	"github.com/switchboardhq/switchboard/internal/providers/livekit/livekitfake"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud/zegocloudfake"
)

// Names of the providers Fakes registers, in their initial priority order.
const (
	Agora     = "agora-main"
	Zegocloud = "zego-backup"
	LiveKit   = "livekit-edge"
)

// Fakes are three loopback provider fakes, Agora-, ZEGOCLOUD- and
// LiveKit-like, whose health probes and token minting work as with the real
// services. The credentials are made up for the fakes: they are test fixtures.
type Fakes struct {
	agora *agorafake.Fake
	zego  *zegocloudfake.Fake
	lk    *livekitfake.Fake
}

// Start starts the three fakes on loopback ports. Close them when done.
func Start() (*Fakes, error) {
	f := &Fakes{}
	var err error
	if f.agora, err = agorafake.New(agorafake.Config{
		AppID: "0123456789abcdef0123456789abcdef", CustomerID: "sim-customer", CustomerSecret: "sim-customer-secret",
		AppCertificate: "fedcba9876543210fedcba9876543210",
	}); err != nil {
		return nil, fmt.Errorf("start fakes: %w", err)
	}
	if f.zego, err = zegocloudfake.New(zegocloudfake.Config{AppID: 1234567890, ServerSecret: "0123456789abcdef0123456789abcdef"}); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start fakes: %w", err)
	}
	if f.lk, err = livekitfake.New(livekitfake.Config{}); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start fakes: %w", err)
	}
	return f, nil
}

// Providers returns the three providers, enabled, with priorities 1, 2 and 3
// and the given health-check interval (and a failure threshold of 1 when
// fastFail is set, so one failed probe turns a provider CRITICAL).
func (f *Fakes) Providers(interval time.Duration, fastFail bool) []switchboard.Provider {
	lk := switchboard.Provider{
		Name: LiveKit, Kind: switchboard.KindLiveKit, Enabled: true,
		Config:      switchboard.ProviderConfig{URL: f.lk.URL()},
		Credentials: switchboard.Credentials{APIKey: livekit.DevAPIKey, APISecret: livekit.DevAPISecret},
	}
	ps := []switchboard.Provider{f.agora.Provider(Agora), f.zego.Provider(Zegocloud), lk}
	for i := range ps {
		ps[i].Priority = i + 1
		ps[i].HealthCheck.Interval = switchboard.Duration(interval)
		ps[i].HealthCheck.Timeout = switchboard.Duration(min(interval, 2*time.Second))
		if fastFail {
			ps[i].HealthCheck.FailureThreshold = 1
			ps[i].HealthCheck.SuccessThreshold = 1
		}
		ps[i].Normalize()
	}
	return ps
}

// Faults returns the fault injector of the named provider's fake.
func (f *Fakes) Faults(name string) (*fault.Server, bool) {
	switch name {
	case Agora:
		return f.agora.Faults(), true
	case Zegocloud:
		return f.zego.Faults(), true
	case LiveKit:
		return f.lk.Faults(), true
	}
	return nil, false
}

// Close stops the fakes.
func (f *Fakes) Close() error {
	var errs []error
	if f.agora != nil {
		errs = append(errs, f.agora.Close())
	}
	if f.zego != nil {
		errs = append(errs, f.zego.Close())
	}
	if f.lk != nil {
		errs = append(errs, f.lk.Close())
	}
	return errors.Join(errs...)
}
