package notify

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPayload builds one id-only notification Bundle (a 10-patient commit's), as the
// deliverer does for every subscription and notification.
func BenchmarkPayload(b *testing.B) {
	s := &Service{}
	sub := &subscription{ID: newID(), Payload: IDOnly}
	n := notification{ID: newID(), Subscription: sub.ID, Event: resourceChanged, At: time.Now().UTC(), Seq: 42, Patient: "Patient/p0"}
	for i := range 10 {
		n.Focus = append(n.Focus, focus{Type: "Patient", ID: "p" + string(rune('0'+i)), Version: 1})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.payload(context.Background(), sub, n); err != nil {
			b.Fatal(err)
		}
	}
}
