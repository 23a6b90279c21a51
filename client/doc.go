// Package client is the Switchboard SDK that apps embed: it starts streams on
// the provider the control plane assigns, retries and fails over to the next
// provider by priority, watches provider health (pushed events first, polling
// as a fallback) and migrates live streams to another provider with a
// make-before-break switch.
package client
