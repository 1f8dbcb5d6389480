package cli

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redclone/red/internal/notify"
	"github.com/redclone/red/internal/vault"
)

// notifyOptions are red serve's flags for notifications (package notify).
type notifyOptions struct {
	hosts   []string
	lease   time.Duration
	poll    time.Duration
	backoff time.Duration
	off     bool
}

func (o *notifyOptions) flags(c *cobra.Command) {
	f := c.Flags()
	f.StringSliceVar(&o.hosts, "notify-allow-host", nil, "a host name (not on this machine) that Subscriptions may send notifications to, over https only (repeatable); by default only loopback endpoints are accepted")
	f.BoolVar(&o.off, "notify-off", false, "deliver no notifications from this workstation (another one sharing the database does)")
	f.DurationVar(&o.lease, "notify-lease", 0, "how long a workstation holds a subscription's deliveries before another may take over (default 15s)")
	f.DurationVar(&o.poll, "notify-poll", 0, "how often the outbox is looked at for what other workstations wrote and for retries (default 1s)")
	f.DurationVar(&o.backoff, "notify-backoff", 0, "the wait after a failed delivery, doubled after each further failure (default 1s)")
	for _, hidden := range []string{"notify-lease", "notify-poll", "notify-backoff"} {
		_ = f.MarkHidden(hidden)
	}
}

// service is the tenant's notifications over barrier b.
func (o *notifyOptions) service(tenant string, b *vault.Barrier, log *slog.Logger) *notify.Service {
	hosts := make([]string, 0, len(o.hosts))
	for _, h := range o.hosts {
		hosts = append(hosts, strings.ToLower(strings.TrimSpace(h)))
	}
	return &notify.Service{Tenant: tenant, Store: b, Hosts: hosts,
		Delivery: notify.Delivery{Lease: o.lease, Poll: o.poll, Backoff: o.backoff, Log: log}}
}

// run starts the deliverer; the returned func stops it and waits for it (before the keys are
// wiped).
func (o *notifyOptions) run(ctx context.Context, s *notify.Service) func() {
	if o.off {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
