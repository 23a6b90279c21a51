// Package conformance is the kit that proves an SDK of Switchboard behaves as
// docs/sdk-protocol.md says: scenarios written as data (scenarios/*.json), a
// runner that plays them against a real `switchboard serve` with providers
// whose health it decides, and the HTTP "test service" protocol through which
// it drives an SDK in any language. GoService is the Go SDK's test service;
// the TypeScript SDK's is sdk/js/test/service.ts.
package conformance

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
)

//go:embed scenarios/*.json
var scenarioFiles embed.FS

// Scenario is one conformance scenario: the providers to register, the client
// options, and the steps to play in order.
type Scenario struct {
	Name      string         `json:"name"`
	About     string         `json:"about"`
	Providers []ProviderSpec `json:"providers"`
	// Settings, when set, are put (PUT /api/settings) before the client is made.
	Settings json.RawMessage `json:"settings,omitempty"`
	// Client are options of the client, given to the test service as they are.
	Client json.RawMessage `json:"client,omitempty"`
	Steps  []Step          `json:"steps"`
}

// ProviderSpec is a provider of the scenario: kind http, healthy at first.
type ProviderSpec struct {
	Name     string `json:"name"`
	Priority int    `json:"priority"`
}

// Step is one step: exactly one of its fields is set.
type Step struct {
	Start           *StartStep      `json:"start,omitempty"`
	StartFails      *StartFailsStep `json:"startFails,omitempty"`
	ExpectProvider  *ProviderStep   `json:"expectProvider,omitempty"`
	ExpectStates    *StatesStep     `json:"expectStates,omitempty"`
	ExpectLastState *StateStep      `json:"expectLastState,omitempty"`
	WaitState       *StateStep      `json:"waitState,omitempty"`
	ExpectServer    *ServerStep     `json:"expectServer,omitempty"`
	ExpectLog       *LogStep        `json:"expectLog,omitempty"`
	Fault           *FaultStep      `json:"fault,omitempty"`
	Health          *HealthStep     `json:"health,omitempty"`
	WaitEvents      *EventsStep     `json:"waitEvents,omitempty"`
	End             *StreamRef      `json:"end,omitempty"`
	Close           *struct{}       `json:"close,omitempty"`
	PutSettings     json.RawMessage `json:"settings,omitempty"`
	Reorder         *ReorderStep    `json:"reorder,omitempty"`
	WaitConfig      *ConfigStep     `json:"waitConfig,omitempty"`
	BlockEvents     *BlockStep      `json:"blockEvents,omitempty"`
	KillServer      *struct{}       `json:"killServer,omitempty"`
	RestartServer   *struct{}       `json:"restartServer,omitempty"`
	WaitStreams     *StreamsStep    `json:"waitStreams,omitempty"`
	ExpectAttempts  *AttemptsStep   `json:"expectAttempts,omitempty"`
	ServerStreams   *ServerCount    `json:"expectServerStreams,omitempty"`
}

// StartStep starts a stream and names it As for later steps. With Count, it
// starts that many, one after the other, in rooms Room-1 … Room-Count (users
// UserID-1 …): the group As, for waitStreams.
type StartStep struct {
	As     string `json:"as"`
	Room   string `json:"room"`
	UserID string `json:"userId"`
	Role   string `json:"role"`
	Count  int    `json:"count,omitempty"`
}

// StartFailsStep starts a stream that must fail with the error type Error.
type StartFailsStep struct {
	Room   string `json:"room"`
	UserID string `json:"userId"`
	Role   string `json:"role"`
	Error  string `json:"error"`
}

// StreamRef names a stream of an earlier start.
type StreamRef struct {
	Stream string `json:"stream"`
}

// ProviderStep expects a stream to be on Provider now.
type ProviderStep struct {
	Stream   string `json:"stream"`
	Provider string `json:"provider"`
}

// StatesStep expects the stream's states so far to be Types, in order.
type StatesStep struct {
	Stream string   `json:"stream"`
	Types  []string `json:"types"`
}

// StateStep names a state: its type and, when set, its from and to.
type StateStep struct {
	Stream string `json:"stream"`
	Type   string `json:"type"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
}

// ServerStep expects the control plane's view of a stream. Owned expects
// its owner to name the SDK's instance (the client sent
// X-Switchboard-Instance: the server records "token:<id>/<digest>").
type ServerStep struct {
	Stream   string `json:"stream"`
	Provider string `json:"provider,omitempty"`
	Status   string `json:"status,omitempty"`
	Owned    bool   `json:"owned,omitempty"`
	Failure  *struct {
		Provider string `json:"provider"`
		Stage    string `json:"stage"`
	} `json:"failure,omitempty"`
}

// LogStep expects a log line of the SDK that contains Contains.
type LogStep struct {
	Contains string `json:"contains"`
}

// FaultStep injects a fault into the SDK's simulated media engine:
// connection_lost, token_rejected or media_stalled on every connection to
// Provider, or "down"/"up" for its connects.
type FaultStep struct {
	Provider string `json:"provider"`
	Kind     string `json:"kind"`
}

// HealthStep makes the provider's health endpoint answer healthy or not, and
// has the control plane probe it at once.
type HealthStep struct {
	Provider string `json:"provider"`
	Up       bool   `json:"up"`
}

// EventsStep waits for the SDK's event subscription to be up or down.
type EventsStep struct {
	Connected bool `json:"connected"`
}

// ReorderStep puts the providers in Order (PUT /api/streaming/providers/priorities).
type ReorderStep struct {
	Order []string `json:"order"`
}

// ConfigStep waits for the SDK's configuration to have these values (those
// set): its first provider and its maxRetries and maxFailures.
type ConfigStep struct {
	First       string `json:"first,omitempty"`
	MaxRetries  int    `json:"maxRetries,omitempty"`
	MaxFailures int    `json:"maxFailures,omitempty"`
}

// BlockStep makes the proxy in front of the control plane answer the event
// stream with 503 (and cut the one open), or let it through again.
type BlockStep struct {
	Blocked bool `json:"blocked"`
}

// StreamsStep waits for Count streams of the group Group (a start with a
// count) to have a last state of Type, on Provider and with an error that
// contains Error when those are set. More than Count fails the step.
type StreamsStep struct {
	Group    string `json:"group"`
	Type     string `json:"type"`
	Provider string `json:"provider,omitempty"`
	Error    string `json:"error,omitempty"`
	Count    int    `json:"count"`
}

// AttemptsStep expects the attempts the runner counted on Provider: the
// assignments to it that the control plane answered (a start or a migrate)
// through the runner's proxy. Each one is an attempt of the SDK on the
// provider; a retry the budget refuses makes none.
type AttemptsStep struct {
	Provider string `json:"provider"`
	Count    int    `json:"count"`
}

// ServerCount waits for the control plane to hold Count streams of Status
// (active or ended), on Provider when it is set.
type ServerCount struct {
	Status   string `json:"status"`
	Provider string `json:"provider,omitempty"`
	Count    int    `json:"count"`
}

// Scenarios returns the scenarios of the kit, by file name.
func Scenarios() ([]Scenario, error) {
	names, err := fs.Glob(scenarioFiles, "scenarios/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Scenario, 0, len(names))
	for _, name := range names {
		b, err := scenarioFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var s Scenario
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", path.Base(name), err)
		}
		for i, st := range s.Steps {
			if n := st.count(); n != 1 {
				return nil, fmt.Errorf("%s: step %d has %d operations, want 1", path.Base(name), i+1, n)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func (s Step) count() int {
	n := 0
	for _, set := range []bool{s.Start != nil, s.StartFails != nil, s.ExpectProvider != nil, s.ExpectStates != nil, s.ExpectLastState != nil,
		s.WaitState != nil, s.ExpectServer != nil, s.ExpectLog != nil, s.Fault != nil, s.Health != nil, s.WaitEvents != nil, s.End != nil,
		s.Close != nil, s.KillServer != nil, s.RestartServer != nil, len(s.PutSettings) > 0, s.Reorder != nil, s.WaitConfig != nil,
		s.BlockEvents != nil, s.WaitStreams != nil, s.ExpectAttempts != nil, s.ServerStreams != nil} {
		if set {
			n++
		}
	}
	return n
}
