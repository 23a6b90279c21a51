package alerts

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	sb "github.com/switchboardhq/switchboard"
)

// SMTPSender sends e-mail through the channel's SMTP server: in the clear
// (tls none), upgraded with STARTTLS (which must succeed), or over implicit
// TLS; with PLAIN authentication when a username is set. The mail is
// multipart/alternative with a plain-text and an HTML part.
type SMTPSender struct {
	// TLSConfig is the base of the TLS configuration (nil: the system's
	// roots); the server name is set from the channel's host.
	TLSConfig *tls.Config
	Now       func() time.Time
}

// Send delivers n to every recipient of ch in one mail.
func (s *SMTPSender) Send(ctx context.Context, ch sb.AlertChannel, n Notification) error {
	cf := ch.Config
	addr := net.JoinHostPort(cf.Host, strconv.Itoa(cf.Port))
	msg, err := s.message(ch, n)
	if err != nil {
		return &SendError{Msg: "compose: " + err.Error()}
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.TLSConfig != nil {
		tcfg = s.TLSConfig.Clone()
	}
	tcfg.ServerName = cf.Host
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return &SendError{Retryable: true, Msg: redact(ch, "connect: "+err.Error())}
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	var c *smtp.Client
	switch cf.TLS {
	case "implicit":
		c = smtp.NewClient(tls.Client(conn, tcfg))
	case "starttls":
		c, err = smtp.NewClientStartTLS(conn, tcfg)
		if err != nil {
			return smtpError(ch, "starttls", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	if ch.Secrets.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", ch.Secrets.Username, ch.Secrets.Password)); err != nil {
			return smtpError(ch, "auth", err)
		}
	}
	if err := c.SendMail(cf.From, cf.To, bytes.NewReader(msg)); err != nil {
		return smtpError(ch, "send", err)
	}
	if err := c.Quit(); err != nil {
		return nil // the server took the mail; a failed QUIT changes nothing
	}
	return nil
}

// smtpError classifies an SMTP failure: a 4xx reply or a connection error
// may be retried, a 5xx reply may not.
func smtpError(ch sb.AlertChannel, step string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return &SendError{Retryable: se.Code >= 400 && se.Code < 500, Status: se.Code,
			Msg: redact(ch, fmt.Sprintf("smtp %s: %d %s", step, se.Code, sb.Truncate(se.Message, 200)))}
	}
	return &SendError{Retryable: true, Msg: redact(ch, "smtp "+step+": "+err.Error())}
}

// message composes the mail of n.
func (s *SMTPSender) message(ch sb.AlertChannel, n Notification) ([]byte, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	var head bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&head, "%s: %s\r\n", k, v) }
	hdr("From", ch.Config.From)
	hdr("To", strings.Join(ch.Config.To, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", n.title()))
	hdr("Date", now().Format(time.RFC1123Z))
	_, domain, _ := strings.Cut(ch.Config.From, "@")
	hdr("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+domain+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	if n.IncidentID != 0 {
		hdr("X-Switchboard-Incident", strconv.FormatInt(n.IncidentID, 10))
	}
	head.WriteString("\r\n")
	for _, part := range []struct{ ctype, content string }{
		{"text/plain; charset=utf-8", n.text()},
		{"text/html; charset=utf-8", n.html()},
	} {
		w, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.ctype}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		qw := quotedprintable.NewWriter(w)
		if _, err := qw.Write([]byte(part.content)); err != nil {
			return nil, err
		}
		if err := qw.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return append(head.Bytes(), body.Bytes()...), nil
}

// html is n as a small HTML document with the status colour.
func (n Notification) html() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<!doctype html><html><body style="font-family:sans-serif">`+
		`<h2 style="border-left:6px solid #%06X;padding-left:8px">%s</h2><table>`, n.colour(), html.EscapeString(n.title()))
	for _, l := range n.lines() {
		v := html.EscapeString(l[1])
		if l[0] == "Dashboard" {
			v = `<a href="` + v + `">` + v + `</a>`
		}
		fmt.Fprintf(&b, "<tr><th align=\"left\">%s</th><td>%s</td></tr>", html.EscapeString(l[0]), v)
	}
	b.WriteString("</table></body></html>")
	return b.String()
}
