package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// Sender delivers a notification through one kind of channel.
type Sender interface {
	Send(ctx context.Context, ch sb.AlertChannel, n Notification) error
}

// SendError is why a send failed: whether another attempt may succeed, the
// HTTP status (or SMTP code) answered, and how long the receiver asked to
// wait (Retry-After). Its message never holds a secret of the channel.
type SendError struct {
	Retryable  bool
	Status     int
	RetryAfter time.Duration
	Msg        string
}

func (e *SendError) Error() string { return e.Msg }

// Default API base URLs.
const (
	DefaultPagerDutyURL = "https://events.pagerduty.com"
	DefaultTwilioURL    = "https://api.twilio.com"
)

// SignatureHeader carries the webhook signature: t=<unix seconds>,v1=<hex of
// HMAC-SHA256 with the signing secret over "<t>.<body>">.
const SignatureHeader = "X-Switchboard-Signature"

// Sign returns the value of SignatureHeader for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a SignatureHeader value against body: the signature must be
// the secret's and t no further than tolerance from now (replays of an old
// request are refused).
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("timestamp outside the tolerance: a replay or a skewed clock")
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("signature mismatch")
	}
	return nil
}

// HTTPSenders sends webhook, Slack, Discord, PagerDuty and SMS notifications
// over HTTP.
type HTTPSenders struct {
	Client *http.Client
	// Now stamps webhook signatures (default time.Now).
	Now func() time.Time
	// UserAgent is sent with every request.
	UserAgent string
}

// Senders returns the sender of every channel kind: the HTTP ones on client
// (nil: a client of its own with a 10 s timeout, which keeps no idle
// connection: notifications are rare, and nothing lingers after a send) and
// e-mail through SMTP with tlsConfig (nil: the system's roots).
func Senders(client *http.Client, tlsConfig *tls.Config, now func() time.Time) map[sb.ChannelKind]Sender {
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DisableKeepAlives = true
		// A redirect is answered as it is (a failure, not retried): a
		// notification goes where the channel says, or nowhere.
		client = &http.Client{Timeout: 10 * time.Second, Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if now == nil {
		now = time.Now
	}
	h := &HTTPSenders{Client: client, Now: now, UserAgent: "Switchboard/" + sb.Version}
	return map[sb.ChannelKind]Sender{
		sb.ChannelWebhook:   senderFunc(h.webhook),
		sb.ChannelSlack:     senderFunc(h.slack),
		sb.ChannelDiscord:   senderFunc(h.discord),
		sb.ChannelPagerDuty: senderFunc(h.pagerDuty),
		sb.ChannelSMS:       senderFunc(h.sms),
		sb.ChannelEmail:     &SMTPSender{TLSConfig: tlsConfig, Now: now},
	}
}

type senderFunc func(ctx context.Context, ch sb.AlertChannel, n Notification) error

func (f senderFunc) Send(ctx context.Context, ch sb.AlertChannel, n Notification) error {
	return f(ctx, ch, n)
}

// post sends body to target and classifies the answer: 2xx is success; 429
// and 5xx, timeouts and connection errors may be retried; any other status
// may not. Errors name neither the URL (it may be a credential) nor a secret.
func (h *HTTPSenders) post(ctx context.Context, ch sb.AlertChannel, target, contentType string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return &SendError{Msg: "cannot build the request: the URL is malformed"}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", h.UserAgent)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		var ue *url.Error
		msg := err.Error()
		if errors.As(err, &ue) {
			msg = ue.Err.Error()
		}
		return &SendError{Retryable: true, Msg: redact(ch, "request failed: "+msg)}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &SendError{Status: resp.StatusCode,
		Retryable:  resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), h.Now()),
		Msg:        redact(ch, fmt.Sprintf("answered %d %s", resp.StatusCode, sb.Truncate(strings.TrimSpace(printable(snippet)), 200)))}
	return e
}

// retryAfter parses a Retry-After value: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// printable keeps the printable runes of b.
func printable(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(b))
}

// redact replaces every secret of ch in s.
func redact(ch sb.AlertChannel, s string) string {
	for _, v := range ch.Secrets.Values() {
		s = strings.ReplaceAll(s, v, "[REDACTED]")
	}
	return s
}

func (h *HTTPSenders) webhook(ctx context.Context, ch sb.AlertChannel, n Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return &SendError{Msg: "encode: " + err.Error()}
	}
	hdr := http.Header{SignatureHeader: {Sign(ch.Secrets.SigningSecret, h.Now(), body)}}
	return h.post(ctx, ch, ch.Config.URL, "application/json", body, hdr)
}

// slackMessage is an incoming-webhook message: a text (the notification
// fallback) and one attachment with the status colour and the facts as
// fields.
type slackMessage struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Fallback  string       `json:"fallback"`
	Color     string       `json:"color"`
	Title     string       `json:"title"`
	TitleLink string       `json:"title_link,omitempty"`
	Text      string       `json:"text,omitempty"`
	Fields    []slackField `json:"fields"`
	Footer    string       `json:"footer"`
	Ts        int64        `json:"ts"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

func (h *HTTPSenders) slack(ctx context.Context, ch sb.AlertChannel, n Notification) error {
	a := slackAttachment{Fallback: n.title(), Color: fmt.Sprintf("#%06X", n.colour()), Title: n.title(),
		TitleLink: n.DashboardURL, Text: n.Reason, Footer: "Switchboard", Ts: n.Time.Unix()}
	for _, l := range n.lines() {
		if l[0] == "Dashboard" || l[0] == "Reason" {
			continue
		}
		a.Fields = append(a.Fields, slackField{Title: l[0], Value: l[1], Short: len(l[1]) < 40})
	}
	body, _ := json.Marshal(slackMessage{Text: n.title(), Attachments: []slackAttachment{a}})
	return h.post(ctx, ch, ch.Secrets.WebhookURL, "application/json", body, nil)
}

// discordMessage is an execute-webhook body: content and one embed with the
// status colour (an integer) and the facts as fields.
type discordMessage struct {
	Content string         `json:"content"`
	Embeds  []discordEmbed `json:"embeds"`
}

type discordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	URL         string         `json:"url,omitempty"`
	Color       int            `json:"color"`
	Timestamp   string         `json:"timestamp"`
	Fields      []discordField `json:"fields"`
	Footer      discordFooter  `json:"footer"`
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

type discordFooter struct {
	Text string `json:"text"`
}

func (h *HTTPSenders) discord(ctx context.Context, ch sb.AlertChannel, n Notification) error {
	e := discordEmbed{Title: sb.Truncate(n.title(), 256), Description: n.Reason, URL: n.DashboardURL, Color: n.colour(),
		Timestamp: n.Time.UTC().Format(time.RFC3339), Footer: discordFooter{Text: "Switchboard"}}
	for _, l := range n.lines() {
		if l[0] == "Dashboard" || l[0] == "Reason" {
			continue
		}
		e.Fields = append(e.Fields, discordField{Name: l[0], Value: sb.Truncate(l[1], 1024), Inline: len(l[1]) < 40})
	}
	body, _ := json.Marshal(discordMessage{Content: sb.Truncate(n.title(), 2000), Embeds: []discordEmbed{e}})
	return h.post(ctx, ch, ch.Secrets.WebhookURL, "application/json", body, nil)
}

// pagerDutyEvent is an Events API v2 event.
type pagerDutyEvent struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction string            `json:"event_action"`
	DedupKey    string            `json:"dedup_key"`
	Payload     *pagerDutyPayload `json:"payload,omitempty"`
	Client      string            `json:"client,omitempty"`
	ClientURL   string            `json:"client_url,omitempty"`
	Links       []pagerDutyLink   `json:"links,omitempty"`
}

type pagerDutyPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp"`
	Component     string         `json:"component,omitempty"`
	Class         string         `json:"class"`
	CustomDetails map[string]any `json:"custom_details"`
}

type pagerDutyLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// DedupKey is the PagerDuty dedup_key of an incident: one per incident, so
// that its trigger, reminders and resolve act on one PagerDuty alert.
func DedupKey(incidentID int64) string {
	return "switchboard-incident-" + strconv.FormatInt(incidentID, 10)
}

func (h *HTTPSenders) pagerDuty(ctx context.Context, ch sb.AlertChannel, n Notification) error {
	base := ch.Config.BaseURL
	if base == "" {
		base = DefaultPagerDutyURL
	}
	target := strings.TrimSuffix(base, "/") + "/v2/enqueue"
	ev := pagerDutyEvent{RoutingKey: ch.Secrets.RoutingKey, EventAction: "trigger", DedupKey: DedupKey(n.IncidentID)}
	if n.Transition == sb.TransitionTest {
		ev.DedupKey = "switchboard-test-" + strconv.FormatInt(n.DeliveryID, 10)
	}
	if n.Transition == sb.TransitionResolve {
		ev.EventAction = "resolve"
	} else {
		severity := map[sb.Severity]string{sb.SeverityCritical: "critical", sb.SeverityWarning: "warning"}[n.Severity]
		if severity == "" {
			severity = "info"
		}
		source := n.Provider
		if source == "" {
			source = "switchboard"
		}
		ev.Payload = &pagerDutyPayload{Summary: sb.Truncate(n.title(), 1024), Source: source, Severity: severity,
			Timestamp: n.Time.UTC().Format(time.RFC3339), Component: n.Provider, Class: n.Event,
			CustomDetails: map[string]any{"event": n.Event, "statusBefore": n.StatusBefore, "statusAfter": n.StatusAfter,
				"reason": n.Reason, "incidentId": n.IncidentID, "transition": n.Transition}}
		ev.Client = "Switchboard"
		if n.DashboardURL != "" {
			ev.ClientURL = n.DashboardURL
			ev.Links = []pagerDutyLink{{Href: n.DashboardURL, Text: "Switchboard dashboard"}}
		}
	}
	body, _ := json.Marshal(ev)
	if err := h.post(ctx, ch, target, "application/json", body, nil); err != nil {
		return err
	}
	if n.Transition == sb.TransitionTest {
		// A test leaves no alert open.
		body, _ := json.Marshal(pagerDutyEvent{RoutingKey: ch.Secrets.RoutingKey, EventAction: "resolve", DedupKey: ev.DedupKey})
		return h.post(ctx, ch, target, "application/json", body, nil)
	}
	return nil
}

// sms sends one message per recipient through the Messaging API.
func (h *HTTPSenders) sms(ctx context.Context, ch sb.AlertChannel, n Notification) error {
	base := ch.Config.BaseURL
	if base == "" {
		base = DefaultTwilioURL
	}
	target := strings.TrimSuffix(base, "/") + "/2010-04-01/Accounts/" + url.PathEscape(ch.Config.AccountSID) + "/Messages.json"
	text := n.title()
	if n.Provider != "" && n.Reason != "" {
		text += " — " + n.Reason
	}
	if n.DashboardURL != "" {
		text += " " + n.DashboardURL
	}
	text = sb.Truncate(text, 1600)
	auth := "Basic " + basicAuth(ch.Config.AccountSID, ch.Secrets.AuthToken)
	for _, to := range ch.Config.To {
		form := url.Values{"To": {to}, "From": {ch.Config.From}, "Body": {text}}
		if err := h.post(ctx, ch, target, "application/x-www-form-urlencoded", []byte(form.Encode()),
			http.Header{"Authorization": {auth}}); err != nil {
			return err
		}
	}
	return nil
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}
