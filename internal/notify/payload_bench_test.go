package notify

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkPayload builds id-only notification Bundles of a 10-patient commit, as the deliverer
// does for every subscription and notification: for the first subscription notified of the
// event (everything written) and for the others (the part they share read from the cache).
func BenchmarkPayload(b *testing.B) {
	s := &Service{}
	sub := &subscription{ID: newID(), Payload: IDOnly}
	n := notification{ID: newID(), Entry: newID() + "/0", Subscription: sub.ID, Event: resourceChanged, At: time.Now().UTC(), Seq: 42, Patient: "Patient/p0"}
	for i := range 10 {
		n.Focus = append(n.Focus, focus{Type: "Patient", ID: "p" + strconv.Itoa(i), Version: 1})
	}
	for _, bc := range []struct {
		name  string
		first bool
	}{{"first subscription", true}, {"other subscriptions", false}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if bc.first {
					i++
					n.Entry = strconv.Itoa(i)
				}
				if _, err := s.payload(context.Background(), sub, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
