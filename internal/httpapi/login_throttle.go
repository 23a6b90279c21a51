package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// LoginThrottle slows down the client addresses that fail to log in. It is
// kept per address only, never per username: failures from one address never
// delay a login from another, so a stranger who knows a username cannot lock
// its owner out. An address that has failed more than Free times in a row must
// wait Base before its next attempt, then twice as long after each further
// failure, up to Max; a successful login from it starts it afresh. IPv6
// addresses are counted per /64, the block one host usually holds.
type LoginThrottle struct {
	Free int           // failures allowed before any wait (default 5)
	Base time.Duration // first wait (default 1 s)
	Max  time.Duration // longest wait (default 15 min)
}

func (o LoginThrottle) withDefaults() LoginThrottle {
	if o.Free <= 0 {
		o.Free = 5
	}
	if o.Base <= 0 {
		o.Base = time.Second
	}
	if o.Max < o.Base {
		o.Max = max(15*time.Minute, o.Base)
	}
	return o
}

// maxThrottled bounds the addresses the throttle remembers.
const maxThrottled = 100_000

type failureState struct {
	failures int
	until    time.Time // no attempt before
	last     time.Time // last failure
}

// failureThrottle is the state of LoginThrottle.
type failureThrottle struct {
	o     LoginThrottle
	mu    sync.Mutex
	m     map[string]*failureState
	swept time.Time
}

func newFailureThrottle(o LoginThrottle) *failureThrottle {
	return &failureThrottle{o: o.withDefaults(), m: map[string]*failureState{}}
}

// wait returns how long addr must still wait before its next attempt (0: none).
func (ft *failureThrottle) wait(addr string, now time.Time) time.Duration {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if st := ft.m[addr]; st != nil && now.Before(st.until) {
		return st.until.Sub(now)
	}
	return 0
}

// failed records a failed attempt from addr and returns the wait it now has.
func (ft *failureThrottle) failed(addr string, now time.Time) time.Duration {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.sweepLocked(now)
	st := ft.m[addr]
	if st == nil {
		st = &failureState{}
		ft.m[addr] = st
	}
	st.failures++
	st.last = now
	if over := st.failures - ft.o.Free; over > 0 {
		d := ft.o.Base
		for i := 1; i < over && d < ft.o.Max; i++ {
			d *= 2
		}
		d = min(d, ft.o.Max)
		st.until = now.Add(d)
		return d
	}
	return 0
}

// succeeded forgets the failures of addr.
func (ft *failureThrottle) succeeded(addr string) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	delete(ft.m, addr)
}

// sweepLocked forgets, at most once a minute, the addresses whose last failure
// is older than twice the longest wait; when still too many are remembered,
// it forgets the ones not waiting.
func (ft *failureThrottle) sweepLocked(now time.Time) {
	if now.Sub(ft.swept) < time.Minute && len(ft.m) < maxThrottled {
		return
	}
	ft.swept = now
	for k, st := range ft.m {
		if now.Sub(st.last) > 2*ft.o.Max {
			delete(ft.m, k)
		}
	}
	for k, st := range ft.m {
		if len(ft.m) < maxThrottled {
			break
		}
		if !now.Before(st.until) {
			delete(ft.m, k)
		}
	}
}

// throttleKey is the key of a client address: the address, or its /64 for IPv6.
func throttleKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// ParseTrustedProxies reads a comma-separated list of addresses and CIDR
// prefixes (such as "10.0.0.0/8, ::1").
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// clientAddr is the address of the client: the remote address of the
// connection, unless it is one of the trusted proxies, in which case it is
// the right-most address of X-Forwarded-For that is not a trusted proxy (the
// one the nearest trusted proxy saw; the ones to its left are whatever the
// client claims). With no trusted proxy, X-Forwarded-For is never read.
func (s *Server) clientAddr(r *http.Request) string {
	remote := clientIP(r)
	if len(s.proxies) == 0 {
		s.untrustedForward(r, remote)
		return remote
	}
	ip, err := netip.ParseAddr(remote)
	if err != nil || !s.trusted(ip) {
		s.untrustedForward(r, remote)
		return remote
	}
	hops := r.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		for f := range strings.SplitSeq(h, ",") {
			all = append(all, strings.TrimSpace(f))
		}
	}
	for i := len(all) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(stripPort(all[i]))
		if err != nil {
			return remote // a malformed hop: trust nothing to its left
		}
		if !s.trusted(a) {
			return a.Unmap().String()
		}
		remote = a.Unmap().String()
	}
	return remote
}

// untrustedForward warns, once per process, of a request whose
// X-Forwarded-For came from remote, which is not a trusted proxy: behind a
// reverse proxy left out of --trusted-proxies, every client shares the
// proxy's address, and with it the per-address limits (the public health's
// rate, a client token's event streams, the login throttle). A client may
// send the header itself, so it is only a hint, and it changes nothing.
func (s *Server) untrustedForward(r *http.Request, remote string) {
	if s.forwardWarned.Load() || r.Header.Get("X-Forwarded-For") == "" || s.forwardWarned.Swap(true) {
		return
	}
	s.logger.WarnContext(r.Context(), "a request came with X-Forwarded-For from an address that is not a trusted proxy: "+
		"if Switchboard runs behind a reverse proxy, list it in --trusted-proxies, or every client behind it shares its address in the per-address limits",
		"remote", remote)
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// stripPort removes a port from an X-Forwarded-For hop such as
// "192.0.2.1:4711" or "[2001:db8::1]:4711".
func stripPort(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.Trim(h, "[]")
}
