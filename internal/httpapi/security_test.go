package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/auth"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// openStream opens GET /api/events with headers and reads up to its first
// frame, so that the stream is registered when it returns.
func (e *testEnv) openStream(ctx context.Context, headers map[string]string) (*http.Response, *bufio.Reader) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/events", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e.t.Fatalf("GET /api/events: %d %s", resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
		e.t.Fatalf("first line of the stream: %q, %v", line, err)
	}
	return resp, br
}

// waitEnd reads the stream until it ends and fails unless it ends within
// limit, the bound the issue sets for revocation. The end comes from a
// cancellation made before the revoking request is answered, so the bound
// holds by a wide margin.
func waitEnd(t *testing.T, br *bufio.Reader, resp *http.Response, limit time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, br)
		done <- err
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Logf("stream ended with %v", err)
		}
	case <-timer.C:
		resp.Body.Close()
		<-done
		t.Fatalf("the event stream was still open %v after its credentials were taken away", limit)
	}
}

// TestRevokedTokenEndsEventStream: a revoked superadmin token kept receiving
// admin-only events on the stream it had opened. Revoking it must end the
// stream within 1 s, and a new one is refused.
func TestRevokedTokenEndsEventStream(t *testing.T) {
	testutil.LeakCheck(t)
	e := newTestEnv(t)
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	e.mustDo("POST", "/api/auth/tokens", bootstrapToken, map[string]string{"name": "ops", "role": "superadmin"}, 201, &tok)
	other, _ := e.openStream(t.Context(), map[string]string{"Authorization": bearer(e.tokens[sb.RoleSuperadmin])})
	defer other.Body.Close()
	resp, br := e.openStream(t.Context(), map[string]string{"Authorization": bearer(tok.Token)})
	defer resp.Body.Close()
	if n := e.api.OpenStreams(TokenPrincipal(tok.ID)); n != 1 {
		t.Fatalf("OpenStreams = %d, want 1", n)
	}
	e.mustDo("DELETE", "/api/auth/tokens/"+tok.ID, e.tokens[sb.RoleSuperadmin], nil, 204, nil)
	waitEnd(t, br, resp, time.Second)
	if st, _ := e.do("GET", "/api/events", tok.Token, nil); st != 401 {
		t.Errorf("a revoked token opened a stream: %d", st)
	}
	testutil.Eventually(t, "the revoked token's stream to be forgotten", func() bool {
		return e.api.OpenStreams(TokenPrincipal(tok.ID)) == 0
	})
	// Another token's stream is untouched: it still receives events.
	if n := e.api.OpenStreams(TokenPrincipal(idOfToken(t, e, e.tokens[sb.RoleSuperadmin]))); n != 1 {
		t.Errorf("the other token's streams: %d, want 1", n)
	}
}

// idOfToken returns the id of a bearer token, through /api/auth/me.
func idOfToken(t *testing.T, e *testEnv, token string) string {
	t.Helper()
	var list struct {
		Tokens []sb.APIToken `json:"tokens"`
	}
	e.mustDo("GET", "/api/auth/tokens", bootstrapToken, nil, 200, &list)
	var me meResponse
	e.mustDo("GET", "/api/auth/me", token, nil, 200, &me)
	for _, tk := range list.Tokens {
		if tk.Name == me.Name && tk.RevokedAt == nil {
			return tk.ID
		}
	}
	t.Fatalf("no token named %s", me.Name)
	return ""
}

// loginCookie logs in as admin and returns the cookie header and CSRF token.
func (e *testEnv) loginCookie() (cookie, csrf string) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/auth/login", strings.NewReader(`{"username":"admin","password":"`+adminPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var me meResponse
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil || resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		e.t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	c := resp.Cookies()[0]
	return c.Name + "=" + c.Value, me.CSRFToken
}

// TestLogoutEndsEventStream: logging out ends the streams of the session
// (not those of the user's other sessions), and is audited with the login.
func TestLogoutEndsEventStream(t *testing.T) {
	testutil.LeakCheck(t)
	e := newTestEnv(t)
	cookie, csrf := e.loginCookie()
	cookie2, _ := e.loginCookie()
	resp, br := e.openStream(t.Context(), map[string]string{"Cookie": cookie})
	defer resp.Body.Close()
	resp2, _ := e.openStream(t.Context(), map[string]string{"Cookie": cookie2})
	defer resp2.Body.Close()
	if n := e.api.OpenStreams(UserPrincipal("admin")); n != 2 {
		t.Fatalf("streams of admin: %d, want 2", n)
	}
	st, b := e.doHeaders("POST", "/api/auth/logout", nil, map[string]string{"Cookie": cookie, csrfHeader: csrf})
	if st != 204 {
		t.Fatalf("logout: %d %s", st, b)
	}
	waitEnd(t, br, resp, time.Second)
	testutil.Eventually(t, "one stream of admin left", func() bool { return e.api.OpenStreams(UserPrincipal("admin")) == 1 })
	if st, _ := e.doHeaders("GET", "/api/events", nil, map[string]string{"Cookie": cookie}); st != 401 {
		t.Errorf("a logged out session opened a stream: %d", st)
	}
	// EndPrincipal on the user ends the rest (what disabling a user does).
	if n := e.api.EndPrincipal(UserPrincipal("Admin")); n != 1 {
		t.Errorf("EndPrincipal(user) ended %d streams, want 1", n)
	}
	if e.auditCount("admin") < 3 {
		t.Errorf("logins and logout not audited: %d entries", e.auditCount("admin"))
	}
	var out struct{ Entries []sb.AuditEntry }
	e.mustDo("GET", "/api/audit?target=admin", e.tokens[sb.RoleAdmin], nil, 200, &out)
	var actions []string
	for _, en := range out.Entries {
		actions = append(actions, en.Action)
	}
	if got := strings.Join(actions, ","); got != "session.logout,session.login,session.login" {
		t.Errorf("audit actions %s", got)
	}
}

// TestEventStreamsPerToken: a token could open any number of event streams.
// Beyond the limit (default 20) the answer is 429 with a JSON error; other
// tokens are not affected, and a closed stream frees its place.
func TestEventStreamsPerToken(t *testing.T) {
	e := newTestEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	client := map[string]string{"Authorization": bearer(e.tokens[sb.RoleClient])}
	var open []*http.Response
	for range DefaultSSEPerToken {
		resp, _ := e.openStream(ctx, client)
		open = append(open, resp)
	}
	defer func() {
		for _, r := range open {
			r.Body.Close()
		}
	}()
	st, b := e.do("GET", "/api/events", e.tokens[sb.RoleClient], nil)
	if st != http.StatusTooManyRequests {
		t.Fatalf("stream %d: status %d, want 429: %s", DefaultSSEPerToken+1, st, b)
	}
	if d := apiError(t, b); d.Code != sb.ERateLimited || !strings.Contains(d.Message, strconv.Itoa(DefaultSSEPerToken)) {
		t.Errorf("error %+v", d)
	}
	resp, _ := e.openStream(ctx, map[string]string{"Authorization": bearer(e.tokens[sb.RoleAdmin])})
	open = append(open, resp)
	// A client that goes frees its place for the next stream at once, not
	// at its stream's next keep-alive.
	open[0].Body.Close()
	testutil.Eventually(t, "a place to free up", func() bool {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/events", nil)
		req.Header.Set("Authorization", client["Authorization"])
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return false
		}
		open = append(open, resp)
		return true
	})
	if !regexp.MustCompile(`switchboard_event_streams_refused_total [1-9]`).MatchString(e.metricsText()) { // 1, more if the client's close came late
		t.Error("the refusal is not counted")
	}
}

// metricsText is the body of /metrics.
func (e *testEnv) metricsText() string {
	e.t.Helper()
	_, b := e.do("GET", "/metrics", "", nil)
	return string(b)
}

// clientFrom is an HTTP client whose connections come from the loopback
// address local (127.0.0.0/8 is all on the loopback interface).
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func loginFrom(t *testing.T, e *testEnv, c *http.Client, password string) (int, http.Header) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": password})
	resp, err := c.Post(e.srv.URL+"/api/auth/login", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}

// TestClientTokenStreamsPerAddress: every instance of an app shares its
// client token, and the bound of event streams per token let the first 20
// instances subscribe and refused the rest (100 instances from 100
// addresses against a real server: 19 streams and 81 refusals, the demo's
// own client holding one), which then polled for what a stream tells at
// once. A client token's streams are now bounded per client address; other
// tokens and sessions are bounded as a whole, and revoking the client token
// still ends its streams from every address.
func TestClientTokenStreamsPerAddress(t *testing.T) {
	e := newTestEnv(t)
	e.api.ssePer = 2
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	open := func(from, token string) (int, *http.Response) {
		c := clientFrom(from)
		req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/events", nil)
		req.Header.Set("Authorization", bearer(token))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		t.Cleanup(func() { resp.Body.Close(); c.CloseIdleConnections() })
		return 200, resp
	}
	client := e.tokens[sb.RoleClient]
	var streams []*http.Response
	for _, from := range []string{"127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2", "127.0.0.3"} {
		st, resp := open(from, client)
		if st != 200 {
			t.Fatalf("client stream %d from %s: %d, want 200", len(streams)+1, from, st)
		}
		streams = append(streams, resp)
	}
	if st, _ := open("127.0.0.2", client); st != http.StatusTooManyRequests {
		t.Fatalf("a third client stream from one address: %d, want 429", st)
	}
	id := idOfToken(t, e, client)
	if n := e.api.OpenStreams(TokenPrincipal(id)); n != 5 {
		t.Fatalf("streams of the client token: %d, want 5", n)
	}
	// An admin token is bounded as a whole, from any address.
	admin := e.tokens[sb.RoleAdmin]
	for _, from := range []string{"127.0.0.4", "127.0.0.5"} {
		if st, _ := open(from, admin); st != 200 {
			t.Fatalf("admin stream from %s: %d, want 200", from, st)
		}
	}
	if st, _ := open("127.0.0.6", admin); st != http.StatusTooManyRequests {
		t.Fatalf("a third admin stream from a third address: %d, want 429", st)
	}
	// Revoking the client token ends its streams from every address.
	e.mustDo("DELETE", "/api/auth/tokens/"+id, e.tokens[sb.RoleSuperadmin], nil, 204, nil)
	for i, resp := range streams {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("stream %d after the revocation: %v", i+1, err)
		}
	}
	testutil.Eventually(t, "no stream of the revoked token", func() bool { return e.api.OpenStreams(TokenPrincipal(id)) == 0 })
}

// TestLoginFailuresDoNotLockOutOtherAddresses: ten wrong passwords from
// anyone locked the real admin out from every address. Now only the address
// that failed is slowed down; the right password from another address
// succeeds; every refusal is audited and counted.
func TestLoginFailuresDoNotLockOutOtherAddresses(t *testing.T) {
	e := newTestEnv(t)
	// A long first wait, so that the attempts after the sixth meet it however
	// slow the machine is.
	e.api.failures = newFailureThrottle(LoginThrottle{Free: 5, Base: time.Hour, Max: 2 * time.Hour})
	stranger, admin := clientFrom("127.0.0.2"), clientFrom("127.0.0.1")
	defer stranger.CloseIdleConnections()
	defer admin.CloseIdleConnections()
	var statuses []int
	for range 10 {
		st, _ := loginFrom(t, e, stranger, "wrong password")
		statuses = append(statuses, st)
	}
	for i, st := range statuses {
		want := 401
		if i > 5 { // five free failures, the sixth sets a wait, later attempts meet it
			want = 429
		}
		if st != want {
			t.Fatalf("attempt %d from the stranger: %d, want %d (all: %v)", i+1, st, want, statuses)
		}
	}
	// The stranger's address waits, even with the right password.
	st, h := loginFrom(t, e, stranger, adminPassword)
	if st != 429 || h.Get("Retry-After") == "" {
		t.Errorf("the right password from the failing address: %d (Retry-After %q), want 429", st, h.Get("Retry-After"))
	}
	// The admin, from another address, is not locked out.
	if st, _ := loginFrom(t, e, admin, adminPassword); st != 200 {
		t.Fatalf("the right password from another address: %d, want 200", st)
	}
	var out struct{ Entries []sb.AuditEntry }
	e.mustDo("GET", "/api/audit?target=admin", e.tokens[sb.RoleAdmin], nil, 200, &out)
	count := map[string]int{}
	for _, en := range out.Entries {
		count[en.Action]++
		if strings.HasPrefix(en.Action, "session.login_") && !strings.Contains(string(en.After), "127.0.0.2") {
			t.Errorf("refusal without the address: %s", en.After)
		}
		for _, s := range []string{adminPassword, "wrong password"} {
			if strings.Contains(string(en.After), s) {
				t.Errorf("audit entry holds a password: %s", en.After)
			}
		}
	}
	if count["session.login_failed"] != 6 || count["session.login_throttled"] != 5 || count["session.login"] != 1 {
		t.Errorf("audit actions %v, want 6 failed, 5 throttled, 1 login", count)
	}
	m := e.metricsText()
	for _, want := range []string{`switchboard_login_refusals_total{reason="invalid"} 6`, `switchboard_login_refusals_total{reason="throttled"} 5`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestFailureThrottleBackoff checks the waits: none for the free failures,
// then doubling from Base up to Max, per address, and reset by a success.
func TestFailureThrottleBackoff(t *testing.T) {
	ft := newFailureThrottle(LoginThrottle{Free: 2, Base: time.Second, Max: 8 * time.Second})
	now := time.Unix(1e9, 0)
	var waits []time.Duration
	for range 7 {
		waits = append(waits, ft.failed("a", now))
		now = now.Add(9 * time.Second) // past the longest wait, not yet forgotten
	}
	want := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	ft.failed("a", now)
	if w := ft.wait("a", now.Add(time.Second)); w != 7*time.Second {
		t.Errorf("wait = %v, want 7s", w)
	}
	if w := ft.wait("b", now); w != 0 {
		t.Errorf("another address waits %v", w)
	}
	ft.succeeded("a")
	if w := ft.failed("a", now); w != 0 {
		t.Errorf("after a success the first failure waits %v", w)
	}
	if throttleKey("2001:db8:1:2:3:4:5:6") != throttleKey("2001:db8:1:2:ffff::1") || throttleKey("::ffff:192.0.2.1") != "192.0.2.1" {
		t.Error("throttle keys: IPv6 must count per /64, mapped IPv4 as IPv4")
	}
}

// TestClientAddr: X-Forwarded-For is read only from trusted proxies, from the
// right, skipping the trusted hops.
func TestClientAddr(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{proxies: proxies, logger: slog.New(slog.DiscardHandler)}
	cases := []struct {
		remote, xff, want string
	}{
		{"198.51.100.1:4000", "203.0.113.9", "198.51.100.1"},                // not a proxy: the header is ignored
		{"10.1.2.3:4000", "203.0.113.9", "203.0.113.9"},                     // one trusted proxy
		{"10.1.2.3:4000", "6.6.6.6, 203.0.113.9, 192.0.2.7", "203.0.113.9"}, // a chain; the forged left part is ignored
		{"10.1.2.3:4000", "", "10.1.2.3"},                                   // no header
		{"10.1.2.3:4000", "garbage", "10.1.2.3"},                            // malformed
		{"10.1.2.3:4000", "[2001:db8::1]:443", "2001:db8::1"},
	}
	for _, c := range cases {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := s.clientAddr(r); got != c.want {
			t.Errorf("remote %s, XFF %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
	if _, err := ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Error("a bad prefix was accepted")
	}
	if p, _ := ParseTrustedProxies(""); p != nil {
		t.Error("an empty list gave proxies")
	}
}

// TestPrincipalsEndedAcrossReplicas: a revocation tells the other replicas,
// through the shared event log, to end the streams they hold; the event
// reaches no client. Here the event as another replica reads it from the
// log (JSON) ends a stream held on this server.
func TestPrincipalsEndedAcrossReplicas(t *testing.T) {
	testutil.LeakCheck(t)
	e := newTestEnv(t)
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	e.mustDo("POST", "/api/auth/tokens", bootstrapToken, map[string]string{"name": "ops", "role": "superadmin"}, 201, &tok)
	e.events.Take()
	e.mustDo("DELETE", "/api/auth/tokens/"+tok.ID, e.tokens[sb.RoleSuperadmin], nil, 204, nil)
	var published *sb.Event
	for _, ev := range e.events.Take() {
		if ev.Type == EventPrincipalsEnded {
			published = &ev
		}
	}
	if published == nil || published.Audience <= sb.RoleSuperadmin {
		t.Fatalf("revoking published %+v, want a principals.ended event no client receives", published)
	}
	wire, err := json.Marshal(published.Data)
	if err != nil || !strings.Contains(string(wire), tok.ID) {
		t.Fatalf("event data %s %v", wire, err)
	}

	// Another replica: a stream held by a token, ended by the event from the log.
	resp, br := e.openStream(t.Context(), map[string]string{"Authorization": bearer(e.tokens[sb.RoleClient])})
	defer resp.Body.Close()
	id := idOfToken(t, e, e.tokens[sb.RoleClient])
	ev := sb.Event{ID: 99, Type: EventPrincipalsEnded, Data: json.RawMessage(`{"principals":[{"kind":"token","id":"` + id + `"}]}`)}
	if n := e.api.PrincipalsEnded(ev); n != 1 {
		t.Fatalf("PrincipalsEnded ended %d streams, want 1", n)
	}
	waitEnd(t, br, resp, time.Second)
	if n := e.api.PrincipalsEnded(sb.Event{Type: EventPrincipalsEnded, Data: json.RawMessage(`"garbage"`)}); n != 0 {
		t.Errorf("a malformed event ended %d streams", n)
	}
	if n := e.api.PrincipalsEnded(sb.Event{Type: "provider.updated", Data: ev.Data}); n != 0 {
		t.Errorf("another event type ended %d streams", n)
	}
}

// TestDisabledUserEndsEventStream: disabling a user ends the event streams
// its dashboard sessions hold open, within a second, and no other user's.
func TestDisabledUserEndsEventStream(t *testing.T) {
	testutil.LeakCheck(t)
	e := newTestEnv(t)
	su := e.tokens[sb.RoleSuperadmin]
	e.mustDo("POST", "/api/users", su, map[string]string{"username": "dana", "role": "admin", "password": tempPassword}, 201, nil)
	_, s, _ := e.login("dana", tempPassword)
	st, dana, b := e.changePasswordAs(s, tempPassword, newPassword)
	if st != 200 {
		t.Fatalf("change: %d %s", st, b)
	}
	cookie, _ := e.loginCookie() // admin's own session
	other, _ := e.openStream(t.Context(), map[string]string{"Cookie": cookie})
	defer other.Body.Close()
	resp, br := e.openStream(t.Context(), map[string]string{"Cookie": dana.cookie})
	defer resp.Body.Close()
	if n := e.api.OpenStreams(UserPrincipal("dana")); n != 1 {
		t.Fatalf("streams of dana: %d, want 1", n)
	}
	e.mustDo("PUT", "/api/users/dana", su, map[string]any{"enabled": false}, 200, nil)
	waitEnd(t, br, resp, time.Second)
	testutil.Eventually(t, "dana's stream to be forgotten", func() bool { return e.api.OpenStreams(UserPrincipal("dana")) == 0 })
	if n := e.api.OpenStreams(UserPrincipal("admin")); n != 1 {
		t.Errorf("admin's streams: %d, want 1 (untouched)", n)
	}
}

// TestStreamSetFreesGoneClients checks that a principal at its bound of
// streams gets a place as soon as the client of one of them has gone, rather
// than at that stream's next keep-alive, and only then.
func TestStreamSetFreesGoneClients(t *testing.T) {
	ss := newStreamSet()
	p := TokenPrincipal("t1")
	var gone [3]bool
	var released [3]func()
	for i := range gone {
		_, release, setGone, err := ss.open(context.Background(), 3, p)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		released[i] = release
		if i > 0 { // the first is served by its handler: it cannot tell
			setGone(func() bool { return gone[i] })
		}
	}
	if _, _, _, err := ss.open(context.Background(), 3, p); !errors.Is(err, errTooManyStreams) {
		t.Fatalf("a fourth stream while all clients are there: %v, want refused", err)
	}
	gone[2] = true
	_, release, _, err := ss.open(context.Background(), 3, p)
	if err != nil {
		t.Fatalf("a fourth stream once a client has gone: %v", err)
	}
	if n := ss.count(p); n != 3 {
		t.Errorf("%d streams counted, want 3", n)
	}
	released[2]() // the stream gone ends after it was released: nothing changes
	if n := ss.count(p); n != 3 {
		t.Errorf("%d streams counted after a late release, want 3", n)
	}
	release()
	released[0]()
	released[1]()
	if n := ss.count(p); n != 0 {
		t.Errorf("%d streams counted once all are released, want 0", n)
	}
}

// TestPasswordHashingIsBounded: 200 logins at once from 40 addresses, each
// within its own rate limit, made a server hash 64 passwords together (4 GiB
// of Argon2 memory) and shed the rest of the API meanwhile. Now the logins
// wait in a short line for the server's hashing slots, those beyond it are
// answered 503 with Retry-After at once, without looking the user up, and
// so is a request that would hash a new password; nothing is changed by a
// refused request, and the line moves on once a slot is free.
func TestPasswordHashingIsBounded(t *testing.T) {
	e := newTestEnv(t)
	e.api.passwords = auth.NewHashing(1, time.Hour)
	hold, err := e.api.passwords.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hold) // should the test fail before it lets the line move
	// Four logins wait for the one slot (the line is four per slot).
	codes := make(chan int, 4)
	var wg sync.WaitGroup
	for i := range 4 {
		c := clientFrom(fmt.Sprintf("127.0.0.%d", 10+i))
		defer c.CloseIdleConnections()
		wg.Go(func() {
			st, _ := loginFrom(t, e, c, "wrong password")
			codes <- st
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, waiting := e.api.passwords.InUse(); waiting < 4; _, waiting = e.api.passwords.InUse() {
		if time.Now().After(deadline) {
			t.Fatalf("%d logins waiting, want 4", waiting)
		}
		time.Sleep(time.Millisecond)
	}
	// The next login, with the right password, is refused at once.
	other := clientFrom("127.0.0.20")
	defer other.CloseIdleConnections()
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": adminPassword})
	resp, err := other.Post(e.srv.URL+"/api/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var eb errorBody
	err = json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != 503 || err != nil || eb.Error.Code != sb.EUnavailable || !strings.Contains(eb.Error.Message, "retry in a few seconds") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a login past the line: %d %+v (Retry-After %q), want 503 unavailable with Retry-After", resp.StatusCode, eb, resp.Header.Get("Retry-After"))
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Fatal("a refused login set a cookie")
	}
	// A new user's password is not hashed either, and no user is created.
	st, b := e.do("POST", "/api/users", e.tokens[sb.RoleSuperadmin], map[string]string{"username": "newcomer", "password": "a long enough password 1", "role": "admin"})
	if st != 503 || strings.Contains(string(b), "a long enough password 1") {
		t.Fatalf("a new user while hashing is busy: %d %s, want 503", st, b)
	}
	if _, err := e.store.GetUser(context.Background(), "newcomer"); !sb.IsCode(err, sb.ENotFound) {
		t.Fatalf("the refused request created the user: %v", err)
	}
	// Once the slot is free, the waiting logins are checked, one at a time.
	hold()
	wg.Wait()
	close(codes)
	for st := range codes {
		if st != 401 {
			t.Fatalf("a waiting login with a wrong password: %d, want 401", st)
		}
	}
	if hashing, waiting := e.api.passwords.InUse(); hashing != 0 || waiting != 0 {
		t.Fatalf("after the logins: %d hashing, %d waiting", hashing, waiting)
	}
	if st, _ := loginFrom(t, e, other, adminPassword); st != 200 {
		t.Fatalf("the right password once the line is gone: %d, want 200", st)
	}
	m := e.metricsText()
	for _, want := range []string{`switchboard_login_refusals_total{reason="busy"} 1`, `switchboard_login_refusals_total{reason="invalid"} 4`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestUntrustedForwardWarnsOnce: behind a reverse proxy left out of
// --trusted-proxies every client shares the proxy's address, and with it
// the per-address limits, which nothing told the operator. A request whose
// X-Forwarded-For comes from an untrusted address now logs a warning, once
// per process, and changes nothing else.
func TestUntrustedForwardWarnsOnce(t *testing.T) {
	e := newTestEnv(t)
	count := func() int { return strings.Count(e.logs.String(), "not a trusted proxy") }
	login := map[string]string{"username": "admin", "password": "a wrong password"}
	e.doHeaders("POST", "/api/auth/login", login, nil)
	if n := count(); n != 0 {
		t.Fatalf("a request without X-Forwarded-For warned %d times", n)
	}
	for range 3 {
		if st, _ := e.doHeaders("POST", "/api/auth/login", login, map[string]string{"X-Forwarded-For": "203.0.113.9"}); st != 401 {
			t.Fatalf("status %d, want 401 (the header changes nothing)", st)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("%d warnings for three forwarded requests, want 1", n)
	}
}
