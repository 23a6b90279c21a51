// Package health decides how healthy each streaming provider is and keeps
// checking.
//
// It has three parts:
//
//   - The status rules (Observe, ObserveClientFailure, Reevaluate, Derive,
//     StateOf): pure functions of a switchboard.Health, a probe result
//     and the provider's policy. They do no I/O and read no clock, and they are
//     the only place where a status is decided. Whether a status may take
//     streams is switchboard.Status.Usable, the product's one rule.
//   - The Checker, which probes one provider now through its kind's
//     switchboard.Prober, folds the result into the stored health with the
//     rules, and publishes a switchboard.EventProviderStatus when the status
//     changes. Concurrent checks of one provider join a single probe.
//   - The Scheduler, which runs the Checker for every enabled provider at the
//     provider's interval, with a random initial stagger, jitter and a bound on
//     concurrent probes.
//
// The package knows no storage and no metrics library: it takes the store
// through the Registry and HealthRecorder interfaces and reports to metrics
// through the Config.OnProbe and Config.OnTransition hooks.
package health
