//go:build !linux

package loadtest

import "net"

func withRxStamps(c net.Conn) net.Conn { return c }

func rxTime(net.Conn) int64 { return 0 }
