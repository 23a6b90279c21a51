// Package client is the Switchboard SDK that apps embed: it starts streams on
// the provider the control plane assigns, retries and fails over to the next
// provider by priority, watches provider health (pushed events first, polling
// as a fallback) and migrates live streams to another provider with a
// make-before-break switch.
//
// An app implements a MediaEngine once per provider kind and creates one
// Client with New. Client.Start returns a live Stream; its States channel
// tells the app what happens: Connecting, Live, Reconnecting, FailingOver,
// Migrated (with the failover gap) and Failed.
//
// # Starting
//
// Start follows the original app: attempt 1 uses the first provider, attempt
// 2 retries it, attempt 3 fails over to the next one. The number of attempts
// (maxRetries) and the backoff base come from GET /api/streaming/config; the
// backoff is exponential with full jitter, and retries draw on a retry budget
// shared by the Client (at most 20 % of its operations in flight, at least 3),
// so that an outage does not become a retry storm on the backup. Every failed
// attempt is reported to the server.
//
// # Watching
//
// A Client holds one subscription to GET /api/events for all its streams and
// resumes it with Last-Event-ID. A provider turning CRITICAL or DISABLED, or
// being disabled or deleted, moves its streams at once. A MediaError from an
// engine (connection lost, token rejected, or media stalled when the watchdog
// is on) moves the stream at once too. While the event stream is down, the
// Client polls each provider in use every healthCheckInterval, and leaves it
// after maxFailures consecutive unusable answers. An unreachable control
// plane is not a provider failure: streams keep running on their connection,
// and the Client keeps its last known configuration and retries with backoff.
//
// # Moving
//
// A move asks the server for a new assignment (POST /api/streams/{id}/migrate),
// connects it, and only then disconnects the old connection. A stream never
// moves back on its own when the provider it left recovers. When an admin
// changes priorities, the Policy decides: KeepLive (the default) or
// MigrateGradually at a bounded rate.
//
// # Errors
//
// An error answer of the control plane is an *Error (its HTTP status, code,
// message and Retry-After), wrapped with the method and path of the call.
// Package client/admin, the client of the admin API, returns the same type.
package client
