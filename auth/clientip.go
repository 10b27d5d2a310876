package auth

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIPs decides which address a request comes from.
type clientIPs struct{ trusted []netip.Prefix }

func (c clientIPs) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// of returns the client address of r: the peer, unless the peer is a
// trusted proxy, in which case X-Forwarded-For is walked from the right and
// the first entry that is not itself a trusted proxy is the client. Entries
// left of that are the client's own claims and are never believed; an
// unparsable entry stops the walk at the last address a proxy vouched for.
func (c clientIPs) of(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !c.isTrusted(peer) {
		return peer
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap().WithZone("")
		if !c.isTrusted(client) {
			break
		}
	}
	return client
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// ipKey is the rate-limit key of a client address: IPv4 as is, IPv6 by its
// /64, since one subscriber usually holds a whole /64.
func ipKey(a netip.Addr) string {
	if !a.IsValid() {
		return "ip:unknown"
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}
