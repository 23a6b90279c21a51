package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/config"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

var anyListenRE = regexp.MustCompile(`switchboard listening on (https?://\S+)`)

// startServeArgs runs `switchboard serve` in this process with extra flags
// and returns its URL and logs; it stops when the test ends.
func startServeArgs(t *testing.T, args ...string) (string, *testutil.Buffer) {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{"SWITCHBOARD_BOOTSTRAP_TOKEN": serveToken, "SWITCHBOARD_ADMIN_PASSWORD": "transport-test-password"}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testutil.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "sb.db")}, args...),
			func(k string) string { return env[k] }, logs, logs)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var url string
	if !poll(60*time.Second, func() bool {
		if m := anyListenRE.FindStringSubmatch(logs.String()); m != nil {
			url = m[1]
			return true
		}
		if err, ok := exited(done); ok {
			t.Fatalf("server exited before listening: %v\n%s", err, logs)
		}
		return false
	}) {
		t.Fatalf("server did not announce its address:\n%s", logs)
	}
	return url, logs
}

// openEvents opens an event stream and reads its first line.
func openEvents(t *testing.T, c *http.Client, url string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+serveToken)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/events: %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "retry:") {
		t.Fatalf("first line %q %v", l, err)
	}
	return resp, br
}

// nextEvent reads the stream up to the next event of type typ.
func nextEvent(t *testing.T, br *bufio.Reader, typ string) {
	t.Helper()
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before a %s event: %v", typ, err)
		}
		if strings.TrimSpace(l) == "event: "+typ {
			return
		}
	}
}

// createHTTPProvider makes a change that publishes provider.created.
func createHTTPProvider(t *testing.T, c *http.Client, url, name string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"name": name, "kind": "http", "config": map[string]any{"url": "https://status.example/health"}})
	req, _ := http.NewRequest("POST", url+"/api/streaming/providers", strings.NewReader(string(b)))
	req.Header.Set("Authorization", "Bearer "+serveToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create provider: %d", resp.StatusCode)
	}
}

// slowBody sends a login request whose body arrives one byte per second and
// returns when the server closes the connection, with what it answered.
func slowBody(t *testing.T, addr string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The body would take more than an hour at this pace.
	if _, err := fmt.Fprintf(conn, "POST /api/auth/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n", addr); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-wrote }()
	// A watchdog far above the read timeout: without it, the connection
	// would stay open as long as the bytes keep coming.
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection of a body sent one byte per second was still open after 60 s")
	}
	return string(got)
}

// TestSlowBodyIsCutOffButStreamsStay: request bodies sent one byte per
// second were never timed out. With --read-timeout the connection is closed,
// while an event stream opened before stays open past the timeout.
func TestSlowBodyIsCutOffButStreamsStay(t *testing.T) {
	url, _ := startServeArgs(t, "--read-timeout", "1s")
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	_, br := openEvents(t, c, url)
	answer := slowBody(t, strings.TrimPrefix(url, "http://"))
	if strings.HasPrefix(answer, "HTTP/1.1 200") {
		t.Fatalf("the slow request was served: %q", answer)
	}
	// The stream, older than the read timeout by now, still delivers.
	createHTTPProvider(t, c, url, "after-timeout")
	nextEvent(t, br, "provider.created")
}

// writeCert writes a new self-signed certificate for 127.0.0.1, with its key,
// to certFile and keyFile, and returns it.
func writeCert(t *testing.T, certFile, keyFile, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Written to temporary files renamed into place, as a certificate renewal does.
	for _, f := range []struct {
		path string
		blk  *pem.Block
	}{{certFile, &pem.Block{Type: "CERTIFICATE", Bytes: der}}, {keyFile, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}}} {
		if err := os.WriteFile(f.path+".new", pem.EncodeToMemory(f.blk), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f.path+".new", f.path); err != nil {
			t.Fatal(err)
		}
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// servedCert is the certificate a new connection to url is served.
func servedCert(t *testing.T, url string, pool *x509.CertPool) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// TestNativeTLSReloadsOnSIGHUP serves HTTPS with a certificate made by the
// test, then replaces the files and sends SIGHUP: new connections get the
// new certificate, the open event stream keeps its connection, and a pair
// that does not load leaves the served one in place.
func TestNativeTLSReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCert(t, certFile, keyFile, "first")
	url, logs := startServeArgs(t, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("announced %s", url)
	}
	pool := x509.NewCertPool()
	pool.AddCert(first)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer c.CloseIdleConnections()

	resp, br := openEvents(t, c, url)
	if got := resp.TLS.PeerCertificates[0].Subject.CommonName; got != "first" {
		t.Fatalf("served %s", got)
	}
	if h := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(h, "max-age=") {
		t.Errorf("Strict-Transport-Security = %q", h)
	}
	// Cookies are Secure.
	lr, err := c.Post(url+"/api/auth/login", "application/json", strings.NewReader(`{"username":"admin","password":"transport-test-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	lr.Body.Close()
	if lr.StatusCode != 200 || len(lr.Cookies()) != 1 || !lr.Cookies()[0].Secure {
		t.Errorf("login over TLS: %d, cookies %v", lr.StatusCode, lr.Cookies())
	}

	second := writeCert(t, certFile, keyFile, "second")
	pool.AddCert(second)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the reload", func() bool { return strings.Contains(logs.String(), "reloaded the TLS certificate") })
	if got := servedCert(t, url, pool).Subject.CommonName; got != "second" {
		t.Errorf("after SIGHUP a new connection is served %s, want second", got)
	}
	// The stream opened before is still served on its connection.
	createHTTPProvider(t, c, url, "after-reload")
	nextEvent(t, br, "provider.created")

	// A broken pair is refused; the second certificate stays.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the failed reload", func() bool { return strings.Contains(logs.String(), "still serving the previous one") })
	if got := servedCert(t, url, pool).Subject.CommonName; got != "second" {
		t.Errorf("after a failed reload a new connection is served %s, want second", got)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Error("the logs hold key material")
	}
}

// TestACMEWiring checks what can be checked of ACME without reaching a CA
// (none is reachable from the tests): the manager is given the cache
// directory, asks only for the configured host names, and answers the
// tls-alpn-01 challenge on the listener.
func TestACMEWiring(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "acme")
	cfg, err := config.Load([]string{"--acme-domain", "sb.example.com,api.example.com", "--acme-cache", cache,
		"--acme-email", "ops@example.com", "--acme-directory", "https://acme-staging-v02.api.letsencrypt.org/directory"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m := newACMEManager(cfg)
	if got := fmt.Sprint(m.Cache); got != cache {
		t.Errorf("cache %s, want %s", got, cache)
	}
	if m.Email != "ops@example.com" || m.Client == nil || m.Client.DirectoryURL != cfg.ACMEDirectory {
		t.Errorf("email %q, client %+v", m.Email, m.Client)
	}
	ctx := context.Background()
	for host, ok := range map[string]bool{"sb.example.com": true, "api.example.com": true, "evil.example.com": false, "127.0.0.1": false} {
		if err := m.HostPolicy(ctx, host); (err == nil) != ok {
			t.Errorf("host policy for %s: %v", host, err)
		}
	}
	tc, run, err := tlsSetup(cfg, nil)
	if err != nil || tc == nil || run != nil {
		t.Fatalf("tlsSetup: %v %v", tc, err)
	}
	if st, err := os.Stat(cache); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Errorf("cache directory: %v %v", st, err)
	}
	found := false
	for _, p := range tc.NextProtos {
		found = found || p == "acme-tls/1"
	}
	if !found || tc.GetCertificate == nil || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS config: protocols %v, min version %x", tc.NextProtos, tc.MinVersion)
	}
	// A name outside the policy gets no certificate, and no CA is contacted for it.
	if _, err := tc.GetCertificate(&tls.ClientHelloInfo{ServerName: "evil.example.com"}); err == nil {
		t.Error("a certificate for a host outside the policy")
	}
}
