// Package providers lists the adapter of every provider kind. Each kind lives
// in a package of its own below this one, with its probe, its join-token
// minting and a loopback fake of the provider. What the probes share (their
// HTTP client, bounded reads, failure stages, redaction) is package probe;
// the suite every probe passes against its fake is package probe/probetest,
// and the fault injection under every fake is package fault.
package providers

import (
	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/agora"
	"github.com/switchboardhq/switchboard/internal/providers/httpcheck"
	"github.com/switchboardhq/switchboard/internal/providers/livekit"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud"
)

// Adapters returns a ready adapter for each provider kind.
func Adapters() map[switchboard.Kind]switchboard.Adapter {
	return map[switchboard.Kind]switchboard.Adapter{
		switchboard.KindAgora:     &agora.Adapter{},
		switchboard.KindZegocloud: &zegocloud.Adapter{},
		switchboard.KindLiveKit:   &livekit.Adapter{},
		switchboard.KindHTTP:      &httpcheck.Adapter{},
	}
}

// Probers returns the adapters as probers, for the health checker.
func Probers() map[switchboard.Kind]switchboard.Prober {
	out := map[switchboard.Kind]switchboard.Prober{}
	for k, a := range Adapters() {
		out[k] = a
	}
	return out
}
