package notify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redclone/red/fhir"
)

// MaxEvents caps one $events answer.
const MaxEvents = 100

// Events answers GET /{tenant}/Subscription/{id}/$events?since=N: the notifications numbered
// after N, in order, at most count (MaxEvents), each as the Bundle the endpoint is sent — for a
// receiver that missed some (a gap in the sequence numbers) or lost its own state. Only numbered
// notifications are listed: those not yet numbered come with the next delivery. Notifications
// retention let go (delivered longer than Delivery.Keep ago) are gone: asking for them is
// answered 410 with the first number still kept.
func (s *Service) Events(ctx context.Context, id string, since int64, count int) (fhir.SearchSet, error) {
	if since < 0 {
		return fhir.SearchSet{}, fhir.Fail(fhir.CodeValue, "since", "since is a sequence number from 0")
	}
	if count <= 0 || count > MaxEvents {
		count = MaxEvents
	}
	sub, err := s.get(ctx, id)
	if err != nil {
		return fhir.SearchSet{}, missing(err)
	}
	led, err := s.ledger(ctx)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	last, g, err := s.head(ctx, led.Segments)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	var numbered int64
	if c := led.cursor(sub); c != nil {
		numbered = c.Seq
	}
	if g != nil {
		numbered = max(numbered, g.Upto[sub.key()])
	}
	set := fhir.SearchSet{ID: newID(), Updated: s.now(), Total: int(max(numbered-since, 0))}
	upto := min(numbered, since+int64(count))
	if upto <= since {
		return set, nil
	}
	items, err := s.numbered(ctx, sub.key(), since+1, upto, led.Oldest, last)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	if len(items) == 0 || items[0].seq() > since+1 {
		kept := "none is"
		if len(items) > 0 {
			kept = fmt.Sprintf("the first kept is %d", items[0].seq())
		}
		return fhir.SearchSet{}, fhir.Fail(fhir.CodeDeleted, "since", "notification %d is no longer kept (red keeps delivered notifications for %s); %s",
			since+1, period(s.Delivery.withDefaults().Keep), kept)
	}
	ns := make([]notification, 0, len(items))
	for _, it := range items {
		ns = append(ns, it.e.notification(it.i, it.j))
	}
	for _, n := range ns {
		body, err := s.payload(ctx, sub, n)
		if err != nil {
			return fhir.SearchSet{}, err
		}
		el, err := fhir.Parse(body, fhir.DefaultLimits)
		if err != nil {
			return fhir.SearchSet{}, err
		}
		set.Entries = append(set.Entries, fhir.Entry{FullURL: "urn:uuid:" + uuidOf(n.ID), Resource: el})
	}
	return set, nil
}

// period writes d in days when it is whole days.
func period(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		if days := d / (24 * time.Hour); days != 1 {
			return fmt.Sprintf("%d days", days)
		}
		return "1 day"
	}
	return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m") // 36h, not 36h0m0s
}
