package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// The load generator speaks HTTP/1.1 itself: each worker keeps one
// keep-alive connection per server, writes a request it built into a reused
// buffer and reads the answer with the small parser below. net/http's client
// costs about as much CPU per request as the servers being measured (two
// goroutines per connection, channel handoffs, a Request and a Response with
// their header maps), and on a machine whose cores the load generator shares
// with the server that CPU is taken from the server; this one costs a write
// and a read system call and little else, so the figures are the servers'.

// request appends the i-th request of a load run, as raw HTTP/1.1, to dst
// and returns the address (host:port) it goes to and the extended buffer.
type request func(dst []byte, i int64) (addr string, raw []byte)

// hostOf returns the host:port of a base URL such as http://127.0.0.1:8080.
func hostOf(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	return u.Host
}

// appendRequest appends one HTTP/1.1 request with an optional bearer token
// and JSON body.
func appendRequest(dst []byte, method, host, path, token string, body []byte) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUser-Agent: switchboard-bench\r\n"...)
	if token != "" {
		dst = append(dst, "Authorization: Bearer "...)
		dst = append(dst, token...)
		dst = append(dst, "\r\n"...)
	}
	if body != nil || method == "POST" {
		if len(body) > 0 {
			dst = append(dst, "Content-Type: application/json\r\n"...)
		}
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}

// rawConn is one keep-alive connection of a worker.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

// rawClient is one worker's connections, by address.
type rawClient struct {
	conns    map[string]*rawConn
	deadline time.Time // of every connection's reads and writes
}

func newRawClient(deadline time.Time) *rawClient {
	return &rawClient{conns: map[string]*rawConn{}, deadline: deadline}
}

// do sends raw to addr and reads the answer, returning its status code. A
// connection that failed, or that the server asked to close, is dropped and
// dialled again by the next request.
func (rc *rawClient) do(addr string, raw []byte) (int, error) {
	c := rc.conns[addr]
	if c == nil {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		_ = nc.SetDeadline(rc.deadline)
		c = &rawConn{c: nc, br: bufio.NewReaderSize(nc, 16<<10)}
		rc.conns[addr] = c
	}
	status, keep, err := c.roundTrip(raw)
	if err != nil || !keep {
		c.c.Close()
		delete(rc.conns, addr)
	}
	return status, err
}

// close closes every connection.
func (rc *rawClient) close() {
	for addr, c := range rc.conns {
		c.c.Close()
		delete(rc.conns, addr)
	}
}

var errMalformed = errors.New("malformed HTTP response")

// roundTrip writes one request and reads its whole answer. keep says whether
// the connection can carry the next request.
func (c *rawConn) roundTrip(raw []byte) (status int, keep bool, err error) {
	if _, err := c.c.Write(raw); err != nil {
		return 0, false, err
	}
	return readResponse(c.br)
}

// readResponse reads one HTTP/1.1 response from br: the status line, the
// headers (of which only Content-Length, Transfer-Encoding and Connection
// matter here) and the body, which it discards.
func readResponse(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
		}
		status = status*10 + int(d-'0')
	}
	keep = line[7] == '1' // HTTP/1.0 closes unless told otherwise; the servers here speak 1.1
	length, chunked := int64(-1), false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return status, false, err
		}
		if len(line) <= 2 { // the empty line ending the headers
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return status, false, fmt.Errorf("%w: header %q", errMalformed, line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, perr := strconv.ParseInt(string(value), 10, 64)
			if perr != nil || n < 0 {
				return status, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
			length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.Contains(bytes.ToLower(value), []byte("close")) {
				keep = false
			}
		}
	}
	switch {
	case status == 204 || status == 304 || (status >= 100 && status < 200):
		return status, keep, nil
	case chunked:
		return status, keep, discardChunked(br)
	case length >= 0:
		_, err = br.Discard(int(length))
		return status, keep, err
	}
	// No length: the body runs to the end of the connection.
	_, err = io.Copy(io.Discard, br)
	return status, false, err
}

// discardChunked reads a chunked body and its trailers.
func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		hex := bytes.TrimSpace(line)
		if i := bytes.IndexByte(hex, ';'); i >= 0 {
			hex = hex[:i]
		}
		n, err := strconv.ParseInt(string(hex), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			for { // trailers, then the empty line
				line, err = br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(n)); err != nil {
			return err
		}
		if line, err = br.ReadSlice('\n'); err != nil || len(bytes.TrimSpace(line)) != 0 {
			return fmt.Errorf("%w: chunk end", errMalformed)
		}
	}
}
