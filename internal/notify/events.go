package notify

import (
	"context"
	"slices"
	"strconv"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/vault"
)

// MaxEvents caps one $events answer.
const MaxEvents = 100

// seqValue is the index value of sub's notification number seq.
func seqValue(sub string, seq int64) string { return sub + "|" + strconv.FormatInt(seq, 10) }

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
	cur, err := s.cursor(ctx, id)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	set := fhir.SearchSet{ID: newID(), Updated: s.now(), Total: int(max(cur.Seq-since, 0))}
	last := min(cur.Seq, since+int64(count))
	if last <= since {
		return set, nil
	}
	group := make([]vault.Term, 0, last-since)
	for n := since + 1; n <= last; n++ {
		group = append(group, vault.Term{Index: seqIndex, Value: seqValue(id, n)})
	}
	page, err := s.Store.Find(ctx, vault.Query{Type: notificationType, All: [][]vault.Term{group}})
	if err != nil {
		return fhir.SearchSet{}, err
	}
	ns := make([]notification, 0, len(page.Resources))
	for _, r := range page.Resources {
		n, err := decodeNotification(r)
		if err != nil {
			return fhir.SearchSet{}, err
		}
		ns = append(ns, n)
	}
	slices.SortFunc(ns, func(a, b notification) int { return int(a.Seq - b.Seq) })
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
