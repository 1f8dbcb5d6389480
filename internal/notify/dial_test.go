package notify

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// answers is a resolver stub: each name's answers, one list per lookup in turn (the last one
// repeats); it counts the lookups.
type answers struct {
	mu      sync.Mutex
	names   map[string][][]string
	lookups map[string]int
}

func (a *answers) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lookups == nil {
		a.lookups = map[string]int{}
	}
	turns := a.names[host]
	if len(turns) == 0 {
		return nil, errors.New("no such host")
	}
	turn := turns[min(a.lookups[host], len(turns)-1)]
	a.lookups[host]++
	var out []netip.Addr
	for _, s := range turn {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func TestPinChecksEveryAddressOfTheHost(t *testing.T) {
	res := &answers{names: map[string][][]string{
		"localhost":           {{"127.0.0.1", "::1"}},
		"pvs.praxis.example":  {{"192.168.10.20"}},
		"cloud.example":       {{"203.0.113.7", "2001:db8::7"}},
		"mapped.example":      {{"::ffff:198.51.100.4"}},
		"rebound.example":     {{"203.0.113.7", "127.0.0.1"}},
		"metadata.example":    {{"169.254.169.254"}},
		"zero.example":        {{"0.1.2.3"}},
		"multicast.example":   {{"224.0.0.251"}},
		"unspecified.example": {{"::"}},
	}}
	d := &dialer{resolver: res, hosts: []string{"pvs.praxis.example", "cloud.example", "mapped.example", "rebound.example", "metadata.example",
		"zero.example", "multicast.example", "unspecified.example", "unknown.example"}}
	for _, tc := range []struct {
		name, host, want, refused string
	}{
		{"connects a loopback address as it is", "127.0.0.1", "127.0.0.1", ""},
		{"connects ::1 as it is", "::1", "::1", ""},
		{"resolves localhost to loopback", "localhost", "127.0.0.1", ""},
		{"connects an allowed host in the practice's network", "pvs.praxis.example", "192.168.10.20", ""},
		{"connects an allowed host beyond it", "cloud.example", "203.0.113.7", ""},
		{"unmaps an IPv4-mapped address", "mapped.example", "198.51.100.4", ""},
		{"refuses an allowed host that resolves here too", "rebound.example", "", "resolves to 127.0.0.1"},
		{"refuses a link-local address", "metadata.example", "", "resolves to 169.254.169.254"},
		{"refuses 0.0.0.0/8", "zero.example", "", "resolves to 0.1.2.3"},
		{"refuses multicast", "multicast.example", "", "resolves to 224.0.0.251"},
		{"refuses the unspecified address", "unspecified.example", "", "resolves to ::"},
		{"refuses an allowed host that does not resolve", "unknown.example", "", "could not be resolved"},
		{"refuses a host not allowed", "example.com", "", "not to example.com"},
		{"refuses an address not allowed", "10.0.0.8", "", "not to 10.0.0.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.pin(context.Background(), tc.host)
			if tc.refused != "" {
				var r *refusal
				if !errors.As(err, &r) || !strings.Contains(r.reason, tc.refused) {
					t.Fatalf("pin(%s) = %v, %v; want a refusal saying %q", tc.host, got, err, tc.refused)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("pin(%s) = %v, %v; want %s", tc.host, got, err, tc.want)
			}
		})
	}
}

// The connection goes to exactly the address that was checked: the name is looked up once, and
// an answer that changes afterwards (DNS rebinding) does not redirect it.
func TestDialConnectsToThePinnedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	res := &answers{names: map[string][][]string{"localhost": {{"127.0.0.1"}, {"10.0.0.8"}}}}
	d := &dialer{resolver: res}
	conn, err := d.dial(context.Background(), "tcp", net.JoinHostPort("localhost", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.RemoteAddr().String(); got != ln.Addr().String() {
		t.Errorf("connected to %s, want %s", got, ln.Addr())
	}
	if res.lookups["localhost"] != 1 {
		t.Errorf("%d lookups for one connection", res.lookups["localhost"])
	}
	// the next connection looks up again, gets the changed answer and is refused before dialling
	if _, err := d.dial(context.Background(), "tcp", net.JoinHostPort("localhost", port)); err == nil || !strings.Contains(err.Error(), "resolves to 10.0.0.8") {
		t.Errorf("a rebound answer gave %v", err)
	}
}
