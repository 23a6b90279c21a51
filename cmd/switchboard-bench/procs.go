package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a server process the benchmark started: Switchboard or the
// baseline.
type server struct {
	cmd   *exec.Cmd
	url   string
	done  chan struct{} // closed when the process has exited
	err   error         // its exit, once done is closed
	out   *syncBuffer   // what it wrote, for errors
	ready time.Duration // from exec to the first 200 of /healthz
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 { // keep the start, where the errors of a failed start are
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// announceRE finds the address a server announces on its standard output.
var announceRE = regexp.MustCompile(`listening on (http://\S+)`)

// startServer execs bin with args in dir, with env added to an environment
// cleared of SWITCHBOARD_ variables, waits for it to announce its address and
// answer /healthz, and records how long that took from exec.
func startServer(ctx context.Context, bin string, args, env []string, dir string) (*server, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHBOARD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	s := &server{cmd: cmd, done: make(chan struct{}), out: &syncBuffer{}}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = s.out
	urls := make(chan string, 1)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			s.out.Write([]byte(line + "\n"))
			if m := announceRE.FindStringSubmatch(line); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		s.err = cmd.Wait()
		close(s.done)
	}()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	select {
	case s.url = <-urls:
	case <-s.done:
		return nil, fmt.Errorf("%s exited before listening: %v\n%s", bin, s.err, s.out)
	case <-timeout.C:
		s.stop()
		return nil, fmt.Errorf("%s did not announce its address in 60s:\n%s", bin, s.out)
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	// Poll tightly: this wait is the cold-start figure.
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		resp, err := hc.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.ready = time.Since(t0)
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s exited: %v\n%s", bin, s.err, s.out)
		case <-timeout.C:
			s.stop()
			return nil, fmt.Errorf("%s not healthy in 60s:\n%s", bin, s.out)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// pid returns the server's process id.
func (s *server) pid() int { return s.cmd.Process.Pid }

// stop ends the server with SIGTERM, and SIGKILL after 20 s, and waits for
// it to exit.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
