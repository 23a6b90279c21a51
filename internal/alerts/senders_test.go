package alerts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// request is what a test receiver got.
type request struct {
	Path   string
	Header http.Header
	Body   []byte
}

// receiver is an HTTP server that records requests and answers with the
// statuses of answer, in turn (200 once they run out).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []request
	answers []func(w http.ResponseWriter)
	check   func(r *http.Request, body []byte) int // optional: a status to answer instead
}

func newReceiver(t *testing.T, answers ...func(w http.ResponseWriter)) *receiver {
	rc := &receiver{answers: answers}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		var a func(http.ResponseWriter)
		if len(rc.answers) > 0 {
			a, rc.answers = rc.answers[0], rc.answers[1:]
		}
		check := rc.check
		rc.mu.Unlock()
		if check != nil {
			if st := check(r, body); st != 0 {
				w.WriteHeader(st)
				return
			}
		}
		if a != nil {
			a(w)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.got...)
}

func status(code int, hdr ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
	}
}

var t0 = time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)

func sampleNotification() Notification {
	return Notification{Event: sb.AlertProviderCritical, Transition: sb.TransitionTrigger, IncidentID: 42, Provider: "agora",
		StatusBefore: sb.StatusHealthy, StatusAfter: sb.StatusCritical, Severity: sb.SeverityCritical,
		Summary: "Provider agora is CRITICAL", Reason: "5 consecutive failures", Time: t0, OpenedAt: t0,
		DashboardURL: "https://switchboard.example.com/", DeliveryID: 7}
}

const signingSecret = "whsec-test-0123456789abcdef"

func TestWebhookSignedAndVerified(t *testing.T) {
	testutil.LeakCheck(t)
	now := time.Now()
	rc := newReceiver(t)
	rc.check = func(r *http.Request, body []byte) int {
		if err := Verify(signingSecret, r.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			return http.StatusUnauthorized
		}
		return 0
	}
	senders := Senders(rc.Client(), nil, func() time.Time { return now })
	ch := sb.AlertChannel{Name: "hook", Kind: sb.ChannelWebhook, Config: sb.ChannelConfig{URL: rc.URL + "/hook"},
		Secrets: sb.ChannelSecrets{SigningSecret: signingSecret}}
	if err := senders[sb.ChannelWebhook].Send(context.Background(), ch, sampleNotification()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := rc.requests()
	if len(got) != 1 || got[0].Header.Get("Content-Type") != "application/json" {
		t.Fatalf("requests = %+v", got)
	}
	var body map[string]any
	if err := json.Unmarshal(got[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"event": "provider.critical", "provider": "agora", "statusBefore": "HEALTHY",
		"statusAfter": "CRITICAL", "reason": "5 consecutive failures", "time": "2026-12-05T03:00:00Z",
		"incidentId": float64(42), "dashboardUrl": "https://switchboard.example.com/", "transition": "trigger"} {
		if body[k] != want {
			t.Errorf("body[%s] = %v, want %v", k, body[k], want)
		}
	}
	if strings.Contains(string(got[0].Body), signingSecret) {
		t.Error("the body holds the signing secret")
	}

	// The same request replayed later, or signed with another secret, or
	// altered, is refused by the receiver's check.
	sig := got[0].Header.Get(SignatureHeader)
	if err := Verify(signingSecret, sig, got[0].Body, now.Add(10*time.Minute), 5*time.Minute); err == nil {
		t.Error("a replay 10 minutes later verified")
	}
	if err := Verify("another-secret-0123456789", sig, got[0].Body, now, 5*time.Minute); err == nil {
		t.Error("another secret verified")
	}
	if err := Verify(signingSecret, sig, append([]byte(" "), got[0].Body...), now, 5*time.Minute); err == nil {
		t.Error("an altered body verified")
	}
	// A sender whose clock is an hour behind is refused by the live receiver.
	old := Senders(rc.Client(), nil, func() time.Time { return now.Add(-time.Hour) })
	err := old[sb.ChannelWebhook].Send(context.Background(), ch, sampleNotification())
	var se *SendError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized || se.Retryable {
		t.Fatalf("old timestamp: %v, want a 401 not retried", err)
	}
}

func TestSlackPayload(t *testing.T) {
	rc := newReceiver(t)
	s := Senders(rc.Client(), nil, nil)[sb.ChannelSlack]
	ch := sb.AlertChannel{Name: "slack", Kind: sb.ChannelSlack, Secrets: sb.ChannelSecrets{WebhookURL: rc.URL + "/services/T000/B000/XXXX"}}
	if err := s.Send(context.Background(), ch, sampleNotification()); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()[0]
	if got.Path != "/services/T000/B000/XXXX" {
		t.Errorf("path = %s", got.Path)
	}
	// https://api.slack.com/messaging/webhooks, legacy attachments:
	// text, attachments[].{fallback,color,title,title_link,text,fields[].{title,value,short},footer,ts}.
	var m struct {
		Text        string `json:"text"`
		Attachments []struct {
			Fallback  string `json:"fallback"`
			Color     string `json:"color"`
			Title     string `json:"title"`
			TitleLink string `json:"title_link"`
			Text      string `json:"text"`
			Fields    []struct {
				Title string `json:"title"`
				Value string `json:"value"`
				Short bool   `json:"short"`
			} `json:"fields"`
			Footer string `json:"footer"`
			Ts     int64  `json:"ts"`
		} `json:"attachments"`
	}
	dec := json.NewDecoder(strings.NewReader(string(got.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", got.Body, err)
	}
	if !strings.Contains(m.Text, "agora is CRITICAL") || len(m.Attachments) != 1 {
		t.Fatalf("message = %+v", m)
	}
	a := m.Attachments[0]
	if a.Color != "#E01E5A" || a.Fallback == "" || a.TitleLink != "https://switchboard.example.com/" || a.Ts != t0.Unix() || a.Text != "5 consecutive failures" {
		t.Errorf("attachment = %+v", a)
	}
	fields := map[string]string{}
	for _, f := range a.Fields {
		fields[f.Title] = f.Value
	}
	if fields["Provider"] != "agora" || fields["Status"] != "HEALTHY → CRITICAL" || fields["Incident"] != "42" {
		t.Errorf("fields = %v", fields)
	}
	// A resolve is green.
	n := sampleNotification()
	n.Transition = sb.TransitionResolve
	if err := s.Send(context.Background(), ch, n); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rc.requests()[1].Body), `"color":"#2EB67D"`) {
		t.Errorf("resolve body = %s", rc.requests()[1].Body)
	}
}

func TestDiscordPayload(t *testing.T) {
	rc := newReceiver(t, status(http.StatusNoContent))
	s := Senders(rc.Client(), nil, nil)[sb.ChannelDiscord]
	ch := sb.AlertChannel{Name: "discord", Kind: sb.ChannelDiscord, Secrets: sb.ChannelSecrets{WebhookURL: rc.URL + "/api/webhooks/1/tok"}}
	if err := s.Send(context.Background(), ch, sampleNotification()); err != nil {
		t.Fatal(err)
	}
	// https://discord.com/developers/docs/resources/webhook#execute-webhook:
	// content, embeds[].{title,description,url,color (integer),timestamp (ISO8601),fields[].{name,value,inline},footer.text}.
	var m struct {
		Content string `json:"content"`
		Embeds  []struct {
			Title       string `json:"title"`
			Description string `json:"description"`
			URL         string `json:"url"`
			Color       int    `json:"color"`
			Timestamp   string `json:"timestamp"`
			Fields      []struct {
				Name   string `json:"name"`
				Value  string `json:"value"`
				Inline bool   `json:"inline"`
			} `json:"fields"`
			Footer struct {
				Text string `json:"text"`
			} `json:"footer"`
		} `json:"embeds"`
	}
	body := rc.requests()[0].Body
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if len(m.Embeds) != 1 || m.Content == "" {
		t.Fatalf("message = %+v", m)
	}
	e := m.Embeds[0]
	if e.Color != 0xE01E5A || e.Timestamp != "2026-12-05T03:00:00Z" || e.URL != "https://switchboard.example.com/" || len(e.Title) > 256 || e.Footer.Text != "Switchboard" {
		t.Errorf("embed = %+v", e)
	}
	if len(e.Fields) == 0 || e.Fields[0].Name != "Event" || e.Fields[0].Value != "provider.critical" {
		t.Errorf("fields = %+v", e.Fields)
	}
}

func TestPagerDutyEvents(t *testing.T) {
	rc := newReceiver(t, status(http.StatusAccepted), status(http.StatusAccepted))
	s := Senders(rc.Client(), nil, nil)[sb.ChannelPagerDuty]
	ch := sb.AlertChannel{Name: "pd", Kind: sb.ChannelPagerDuty, Config: sb.ChannelConfig{BaseURL: rc.URL},
		Secrets: sb.ChannelSecrets{RoutingKey: "R0UT1NGKEY0123456789012345678901"}}
	n := sampleNotification()
	if err := s.Send(context.Background(), ch, n); err != nil {
		t.Fatal(err)
	}
	n.Transition = sb.TransitionResolve
	if err := s.Send(context.Background(), ch, n); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	if len(got) != 2 || got[0].Path != "/v2/enqueue" {
		t.Fatalf("requests = %+v", got)
	}
	// https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
	type payload struct {
		Summary       string         `json:"summary"`
		Source        string         `json:"source"`
		Severity      string         `json:"severity"`
		Timestamp     string         `json:"timestamp"`
		Component     string         `json:"component"`
		Class         string         `json:"class"`
		CustomDetails map[string]any `json:"custom_details"`
	}
	type event struct {
		RoutingKey  string   `json:"routing_key"`
		EventAction string   `json:"event_action"`
		DedupKey    string   `json:"dedup_key"`
		Payload     *payload `json:"payload"`
		Client      string   `json:"client"`
		ClientURL   string   `json:"client_url"`
		Links       []struct {
			Href string `json:"href"`
			Text string `json:"text"`
		} `json:"links"`
	}
	var trig, res event
	for i, dst := range []*event{&trig, &res} {
		dec := json.NewDecoder(strings.NewReader(string(got[i].Body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			t.Fatalf("decode %s: %v", got[i].Body, err)
		}
	}
	if trig.RoutingKey != ch.Secrets.RoutingKey || trig.EventAction != "trigger" || trig.DedupKey != "switchboard-incident-42" || trig.Payload == nil {
		t.Fatalf("trigger = %+v", trig)
	}
	if p := trig.Payload; p.Summary == "" || len(p.Summary) > 1024 || p.Source != "agora" || p.Severity != "critical" || p.Timestamp != "2026-12-05T03:00:00Z" {
		t.Errorf("payload = %+v", p)
	}
	if len(trig.Links) != 1 || trig.Links[0].Href != "https://switchboard.example.com/" {
		t.Errorf("links = %+v", trig.Links)
	}
	if res.EventAction != "resolve" || res.DedupKey != trig.DedupKey || res.Payload != nil || res.RoutingKey != ch.Secrets.RoutingKey {
		t.Errorf("resolve = %+v", res)
	}
}

func TestTwilioMessages(t *testing.T) {
	const sid, token = "AC0123456789abcdef0123456789abcdef", "auth-token-secret-0123"
	rc := newReceiver(t, status(http.StatusCreated), status(http.StatusCreated))
	s := Senders(rc.Client(), nil, nil)[sb.ChannelSMS]
	ch := sb.AlertChannel{Name: "sms", Kind: sb.ChannelSMS,
		Config:  sb.ChannelConfig{BaseURL: rc.URL, AccountSID: sid, From: "+15550100", To: []string{"+15550111", "+15550122"}},
		Secrets: sb.ChannelSecrets{AuthToken: token}}
	if err := s.Send(context.Background(), ch, sampleNotification()); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests, want one per recipient", len(got))
	}
	for i, r := range got {
		// https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
		if r.Path != "/2010-04-01/Accounts/"+sid+"/Messages.json" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("request %d: %s %s", i, r.Path, r.Header.Get("Content-Type"))
		}
		req := &http.Request{Header: r.Header}
		if u, p, ok := req.BasicAuth(); !ok || u != sid || p != token {
			t.Errorf("basic auth = %q %q %v", u, p, ok)
		}
		form, err := url.ParseQuery(string(r.Body))
		if err != nil {
			t.Fatal(err)
		}
		if form.Get("From") != "+15550100" || form.Get("To") != ch.Config.To[i] || !strings.Contains(form.Get("Body"), "agora is CRITICAL") {
			t.Errorf("form = %v", form)
		}
	}
}

func TestHTTPErrorsClassifiedWithoutSecrets(t *testing.T) {
	rc := newReceiver(t, status(http.StatusServiceUnavailable), status(http.StatusTooManyRequests, "Retry-After", "7"), status(http.StatusBadRequest))
	s := Senders(rc.Client(), nil, nil)[sb.ChannelSlack]
	secretURL := rc.URL + "/services/T000/B000/SECRETSECRET"
	ch := sb.AlertChannel{Name: "slack", Kind: sb.ChannelSlack, Secrets: sb.ChannelSecrets{WebhookURL: secretURL}}
	for _, want := range []SendError{{Retryable: true, Status: 503}, {Retryable: true, Status: 429, RetryAfter: 7 * time.Second}, {Status: 400}} {
		err := s.Send(context.Background(), ch, sampleNotification())
		var se *SendError
		if !errors.As(err, &se) || se.Retryable != want.Retryable || se.Status != want.Status || se.RetryAfter != want.RetryAfter {
			t.Errorf("err = %#v, want %+v", err, want)
		}
	}
	// A connection refused may be retried, and its error does not quote the URL.
	rc.Close()
	err := s.Send(context.Background(), ch, sampleNotification())
	var se *SendError
	if !errors.As(err, &se) || !se.Retryable || strings.Contains(err.Error(), "SECRETSECRET") {
		t.Errorf("closed receiver: %v", err)
	}
}

// smtpBackend is a test SMTP server's backend recording each mail.
type smtpBackend struct {
	user, pass string
	mu         sync.Mutex
	mails      []smtpMail
}

type smtpMail struct {
	From   string
	To     []string
	Data   []byte
	Authed bool
	TLS    bool
}

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &smtpSession{b: b, tls: isTLS}, nil
}

type smtpSession struct {
	b      *smtpBackend
	tls    bool
	authed bool
	cur    smtpMail
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.b.user || password != s.b.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication credentials invalid"}
		}
		s.authed = true
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.user != "" && !s.authed {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	s.cur = smtpMail{From: from, Authed: s.authed, TLS: s.tls}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = b
	s.b.mu.Lock()
	s.b.mails = append(s.b.mails, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// startSMTP starts a test SMTP server with a test certificate: implicit TLS
// when implicit, else STARTTLS offered.
func startSMTP(t *testing.T, b *smtpBackend, implicit bool) (addr string, roots *x509.CertPool) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil) // for its test certificate (valid for 127.0.0.1)
	ts.StartTLS()
	cert := ts.TLS.Certificates[0]
	roots = x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	ts.Close()
	srv := smtp.NewServer(b)
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes of TestEmailFailures
	var ln net.Listener
	var err error
	if implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String(), roots
}

func TestEmailOverSMTP(t *testing.T) {
	testutil.LeakCheck(t)
	for _, mode := range []string{"starttls", "implicit", "none"} {
		t.Run(mode, func(t *testing.T) {
			b := &smtpBackend{user: "alerts", pass: "smtp-password-123"}
			if mode == "none" {
				b.user, b.pass = "", ""
			}
			addr, roots := startSMTP(t, b, mode == "implicit")
			host, port, _ := net.SplitHostPort(addr)
			var p int
			for _, c := range port {
				p = p*10 + int(c-'0')
			}
			ch := sb.AlertChannel{Name: "mail", Kind: sb.ChannelEmail,
				Config:  sb.ChannelConfig{Host: host, Port: p, TLS: mode, From: "switchboard@example.com", To: []string{"oncall@example.com", "lead@example.com"}},
				Secrets: sb.ChannelSecrets{Username: b.user, Password: b.pass}}
			if err := ch.Validate(); err != nil {
				t.Fatal(err)
			}
			s := Senders(nil, &tls.Config{RootCAs: roots}, nil)[sb.ChannelEmail]
			if err := s.Send(context.Background(), ch, sampleNotification()); err != nil {
				t.Fatalf("Send: %v", err)
			}
			b.mu.Lock()
			mails := b.mails
			b.mu.Unlock()
			if len(mails) != 1 {
				t.Fatalf("%d mails", len(mails))
			}
			m := mails[0]
			if m.From != "switchboard@example.com" || strings.Join(m.To, ",") != "oncall@example.com,lead@example.com" {
				t.Errorf("envelope = %s %v", m.From, m.To)
			}
			if m.TLS != (mode != "none") || m.Authed != (mode != "none") {
				t.Errorf("tls %v authed %v in mode %s", m.TLS, m.Authed, mode)
			}
			checkMail(t, m.Data)
		})
	}
}

// checkMail parses a mail and checks its headers and both parts.
func checkMail(t *testing.T, data []byte) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || !strings.Contains(subj, "agora is CRITICAL") {
		t.Errorf("subject = %q, %v", subj, err)
	}
	if msg.Header.Get("Message-Id") == "" || msg.Header.Get("Date") == "" || msg.Header.Get("X-Switchboard-Incident") != "42" {
		t.Errorf("headers = %v", msg.Header)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %s: %v", mt, err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	parts := map[string]string{}
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[ct] = string(b)
	}
	if !strings.Contains(parts["text/plain"], "Provider: agora") || !strings.Contains(parts["text/plain"], "Status: HEALTHY → CRITICAL") {
		t.Errorf("text part = %q", parts["text/plain"])
	}
	if !strings.Contains(parts["text/html"], "<th align=\"left\">Provider</th><td>agora</td>") || !strings.Contains(parts["text/html"], `href="https://switchboard.example.com/"`) {
		t.Errorf("html part = %q", parts["text/html"])
	}
}

func TestEmailFailures(t *testing.T) {
	b := &smtpBackend{user: "alerts", pass: "right-password"}
	addr, roots := startSMTP(t, b, false)
	host, port, _ := net.SplitHostPort(addr)
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	ch := sb.AlertChannel{Name: "mail", Kind: sb.ChannelEmail,
		Config:  sb.ChannelConfig{Host: host, Port: p, TLS: "starttls", From: "a@example.com", To: []string{"b@example.com"}},
		Secrets: sb.ChannelSecrets{Username: "alerts", Password: "wrong-password-zz"}}
	s := Senders(nil, &tls.Config{RootCAs: roots}, nil)[sb.ChannelEmail]
	err := s.Send(context.Background(), ch, sampleNotification())
	var se *SendError
	if !errors.As(err, &se) || se.Retryable || se.Status != 535 || strings.Contains(err.Error(), "wrong-password-zz") {
		t.Errorf("bad password: %#v", err)
	}
	// A server whose certificate is not trusted is refused.
	err = Senders(nil, nil, nil)[sb.ChannelEmail].Send(context.Background(), ch, sampleNotification())
	if err == nil {
		t.Error("an untrusted certificate was accepted")
	}
}
