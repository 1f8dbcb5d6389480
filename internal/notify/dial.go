package notify

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Resolver looks up host names: *net.Resolver is one (net.DefaultResolver unless a test gives
// a stub).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// refusal is a connection the deliverer does not make; its reason names the endpoint's host and
// address (the admin's, no person data) and is shown on the Subscription.
type refusal struct{ reason string }

func (r *refusal) Error() string { return r.reason }

// client is the deliverer's HTTP client: no proxy, no redirects, bounded in time, and
// connecting only where dialer allows.
func (s *Service) client(d Delivery) *http.Client {
	dl := &dialer{hosts: s.Hosts, resolver: s.Resolver, net: net.Dialer{Timeout: d.Timeout}}
	if dl.resolver == nil {
		dl.resolver = net.DefaultResolver
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dl.dial,
		MaxIdleConnsPerHost:   64, // a round posts to every subscription at once, often on one host
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: d.Timeout,
	}
	return &http.Client{Transport: tr, Timeout: d.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// dialer connects the deliverer to endpoints: on this machine, or on a host the admin allowed by
// name (red serve --notify-allow-host).
type dialer struct {
	hosts    []string // the allowed names, in lower case
	resolver Resolver
	net      net.Dialer
}

// dial connects to addr (host:port): the host is resolved once, each of its addresses checked
// (pin), and the connection made to exactly the first of them, an address — nothing is resolved
// again between the check and the connection, so a DNS answer that changes meanwhile (DNS
// rebinding) cannot redirect a delivery.
func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip, err := d.pin(ctx, host)
	if err != nil {
		return nil, err
	}
	return d.net.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
}

// pin resolves host and returns the address to connect to. A loopback host (localhost, a
// loopback address) must have loopback addresses only; a host the admin allowed must have
// unicast addresses of another machine only — in the practice's network or beyond, but not
// loopback (a name for another machine that points here is what DNS rebinding looks like), not
// link-local (where cloud metadata services answer), not multicast or unspecified. One address
// red does not send to refuses the host. Any other host is refused.
func (d *dialer) pin(ctx context.Context, host string) (netip.Addr, error) {
	loopback := loopbackHost(host)
	if !loopback && !slices.Contains(d.hosts, strings.ToLower(host)) {
		return netip.Addr{}, &refusal{fmt.Sprintf("red sends notifications to this machine and the hosts the admin allowed only, not to %s", host)}
	}
	ips := []netip.Addr{}
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = append(ips, ip)
	} else if ips, err = d.resolver.LookupNetIP(ctx, "ip", host); err != nil || len(ips) == 0 {
		return netip.Addr{}, &refusal{fmt.Sprintf("the endpoint's host %s could not be resolved", host)}
	}
	for i, ip := range ips {
		ip = ip.Unmap()
		if (loopback && !ip.IsLoopback()) || (!loopback && !remoteAddr(ip)) {
			return netip.Addr{}, &refusal{fmt.Sprintf("the endpoint's host %s resolves to %s, an address red does not send notifications to", host, ip)}
		}
		ips[i] = ip
	}
	return ips[0], nil
}

// remoteAddr reports whether ip is an address of another machine red may send to: unicast,
// not loopback, link-local, multicast, unspecified or in 0.0.0.0/8.
func remoteAddr(ip netip.Addr) bool {
	return ip.IsGlobalUnicast() && !(ip.Is4() && ip.As4()[0] == 0)
}
