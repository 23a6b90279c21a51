//go:build unix

package events

import (
	"net"
	"syscall"
)

// canProbe reports whether peerGone can tell a closed connection: streams
// take their connection over from net/http only then.
const canProbe = true

// peerGone reports whether the client of c closed or reset its connection,
// without waiting: it reads what the client sent, which a client of an event
// stream never does, until the read would block. Under TLS it reads the
// underlying connection: the stream never reads TLS records after this, and a
// client that closes sends its close_notify then ends the connection.
func peerGone(c net.Conn) bool {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	err = raw.Read(func(fd uintptr) bool {
		var b [128]byte
	read:
		for range 16 { // a client that keeps sending is not read forever
			n, err := syscall.Read(int(fd), b[:])
			switch {
			case n > 0 || err == syscall.EINTR:
				continue
			case err == nil: // n == 0: the end of the stream
				gone = true
			case err != syscall.EAGAIN && err != syscall.EWOULDBLOCK:
				gone = true // reset, or another failure of the connection
			}
			break read
		}
		return true // never wait for the connection to be readable
	})
	return gone || err != nil
}
