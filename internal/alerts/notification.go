// Package alerts tells people when providers fail: it turns the state of the
// registry and domain events into incidents (Dispatcher), and delivers each
// incident's trigger, reminders and resolve to the channels of the rules
// that ask for them (the delivery worker), through one sender per channel
// kind. A ledger in the store makes every notification happen once, across
// restarts and replicas; only the leading replica runs the Dispatcher.
package alerts

import (
	"fmt"
	"strings"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// Notification is what a channel is told: the JSON body of a webhook, and
// the content every other kind formats.
type Notification struct {
	// Event is the alert event: the incident's cause for a trigger or a
	// reminder; provider.recovered for the resolve of provider.critical;
	// "test" for a test send.
	Event string `json:"event"`
	// Transition is trigger, reminder, resolve or test.
	Transition string `json:"transition"`
	// IncidentID identifies the incident (0 for a test send); its trigger,
	// reminders and resolve share it.
	IncidentID   int64       `json:"incidentId"`
	Provider     string      `json:"provider,omitempty"`
	StatusBefore sb.Status   `json:"statusBefore,omitempty"`
	StatusAfter  sb.Status   `json:"statusAfter,omitempty"`
	Severity     sb.Severity `json:"severity"`
	Summary      string      `json:"summary"`
	Reason       string      `json:"reason,omitempty"`
	// Time is when the transition happened: the incident's opening for a
	// trigger or reminder, its resolution for a resolve.
	Time     time.Time `json:"time"`
	OpenedAt time.Time `json:"openedAt"`
	// Reminder numbers the reminders of an incident from 1.
	Reminder     int    `json:"reminder,omitempty"`
	DashboardURL string `json:"dashboardUrl,omitempty"`
	DeliveryID   int64  `json:"deliveryId"`
}

// EventTest is the event of a test send.
const EventTest = "test"

// notificationOf builds the notification of delivery d of inc.
func notificationOf(inc sb.Incident, d sb.Delivery, dashboard string) Notification {
	n := Notification{Event: inc.Cause, Transition: d.Transition, IncidentID: inc.ID, Provider: inc.Provider,
		StatusBefore: inc.StatusFrom, StatusAfter: inc.StatusTo, Severity: inc.Severity, Summary: inc.Summary,
		Reason: inc.Reason, Time: inc.OpenedAt, OpenedAt: inc.OpenedAt, DashboardURL: dashboard, DeliveryID: d.ID}
	switch d.Transition {
	case sb.TransitionReminder:
		n.Reminder = d.Seq
		n.Summary = fmt.Sprintf("Still unresolved (reminder %d): %s", d.Seq, inc.Summary)
	case sb.TransitionResolve:
		if inc.Cause == sb.AlertProviderCritical {
			n.Event = sb.AlertProviderRecovered
		}
		n.Severity = sb.SeverityInfo
		n.StatusBefore, n.StatusAfter = inc.StatusTo, ""
		if inc.ResolvedAt != nil {
			n.Time = *inc.ResolvedAt
		}
		n.Summary = "Resolved: " + inc.Summary
		n.Reason = ""
	}
	return n
}

// testNotification is the notification of a test send to a channel.
func testNotification(channel string, d sb.Delivery, at time.Time, dashboard string) Notification {
	return Notification{Event: EventTest, Transition: sb.TransitionTest, Severity: sb.SeverityInfo,
		Summary: "Test notification from Switchboard to channel " + channel, Time: at, OpenedAt: at,
		DashboardURL: dashboard, DeliveryID: d.ID}
}

// title is a one-line headline of n.
func (n Notification) title() string {
	switch {
	case n.Transition == sb.TransitionTest:
		return "[TEST] Switchboard alert channel test"
	case n.Transition == sb.TransitionResolve:
		return "[RESOLVED] " + strings.TrimPrefix(n.Summary, "Resolved: ")
	default:
		return "[" + strings.ToUpper(string(n.Severity)) + "] " + n.Summary
	}
}

// lines are the facts of n, as label and value, for the readable formats.
func (n Notification) lines() [][2]string {
	var l [][2]string
	add := func(k, v string) {
		if v != "" {
			l = append(l, [2]string{k, v})
		}
	}
	add("Event", n.Event)
	add("Provider", n.Provider)
	if n.StatusBefore != "" || n.StatusAfter != "" {
		add("Status", strings.TrimSpace(fmt.Sprintf("%s → %s", n.StatusBefore, n.StatusAfter)))
	}
	add("Reason", n.Reason)
	add("Severity", string(n.Severity))
	if n.IncidentID != 0 {
		add("Incident", fmt.Sprint(n.IncidentID))
	}
	add("Time", n.Time.UTC().Format(time.RFC3339))
	add("Dashboard", n.DashboardURL)
	return l
}

// text is n as plain text: the title, then one fact per line.
func (n Notification) text() string {
	var b strings.Builder
	b.WriteString(n.title())
	b.WriteString("\n\n")
	for _, l := range n.lines() {
		fmt.Fprintf(&b, "%s: %s\n", l[0], l[1])
	}
	return b.String()
}

// colour is the status colour of n: red for critical, amber for warning,
// green for a resolve, blue for information.
func (n Notification) colour() int {
	switch {
	case n.Transition == sb.TransitionResolve:
		return 0x2EB67D
	case n.Severity == sb.SeverityCritical:
		return 0xE01E5A
	case n.Severity == sb.SeverityWarning:
		return 0xECB22E
	default:
		return 0x36C5F0
	}
}
