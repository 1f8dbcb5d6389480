package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
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
	keep    keepFlag
	off     bool
}

// keepFlag is --notify-keep: a duration, or whole days as 7d.
type keepFlag time.Duration

func (k *keepFlag) String() string {
	if *k == 0 {
		return "7d"
	}
	if d := time.Duration(*k); d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return time.Duration(*k).String()
}
func (k *keepFlag) Type() string { return "duration" }
func (k *keepFlag) Set(s string) error {
	const maxDays = 100 * 366 // a time.Duration holds 292 years
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int64
		if n, err = strconv.ParseInt(days, 10, 32); err == nil && n > maxDays {
			err = strconv.ErrRange
		}
		d = time.Duration(n) * 24 * time.Hour
	}
	if err != nil || d <= 0 {
		return fmt.Errorf("--notify-keep is a duration such as 7d or 36h, not %q", s)
	}
	*k = keepFlag(d)
	return nil
}

func (o *notifyOptions) flags(c *cobra.Command) {
	f := c.Flags()
	f.StringSliceVar(&o.hosts, "notify-allow-host", nil, "a host name (not on this machine) that Subscriptions may send notifications to, over https only (repeatable); by default only loopback endpoints are accepted")
	f.BoolVar(&o.off, "notify-off", false, "deliver no notifications from this workstation (another one sharing the database does)")
	f.DurationVar(&o.lease, "notify-lease", 0, "how long a workstation holds a subscription's deliveries before another may take over (default 15s)")
	f.DurationVar(&o.poll, "notify-poll", 0, "how often the outbox is looked at for what other workstations wrote and for retries (default 1s)")
	f.DurationVar(&o.backoff, "notify-backoff", 0, "the wait after a failed delivery, doubled after each further failure (default 1s)")
	f.Var(&o.keep, "notify-keep", "how long delivered notifications are kept for Subscription/{id}/$events, e.g. 7d or 36h; then they are pruned (undelivered ones are kept until delivered or their Subscription is deleted)")
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
		Delivery: notify.Delivery{Lease: o.lease, Poll: o.poll, Backoff: o.backoff, Keep: time.Duration(o.keep), Log: log}}
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
