//go:build !unix

package events

import "net"

// canProbe reports whether peerGone can tell a closed connection: streams
// take their connection over from net/http only then. On this system it
// cannot, so the streams are served by their handlers.
const canProbe = false

func peerGone(net.Conn) bool { return false }
