package notify

import (
	"context"
	"strconv"

	"github.com/redclone/red/fhir"
)

// MaxEvents caps one $events answer.
const MaxEvents = 100

// seqValue is the index value of the sequence number seq of the subscription key.
func seqValue(key string, seq int64) string { return key + "|" + strconv.FormatInt(seq, 10) }

// Events answers GET /{tenant}/Subscription/{id}/$events?since=N: the notifications numbered
// after N, in order, at most count (MaxEvents), each as the Bundle the endpoint is sent — for a
// receiver that missed some (a gap in the sequence numbers) or lost its own state. Only numbered
// notifications are listed: those not yet numbered come with the next delivery.
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
	var numbered int64
	if c := led.cursor(sub); c != nil {
		numbered = c.Seq
	}
	set := fhir.SearchSet{ID: newID(), Updated: s.now(), Total: int(max(numbered-since, 0))}
	last := min(numbered, since+int64(count))
	if last <= since {
		return set, nil
	}
	items, err := s.numbered(ctx, sub.key(), since+1, last)
	if err != nil {
		return fhir.SearchSet{}, err
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
