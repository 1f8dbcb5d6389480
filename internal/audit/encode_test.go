package audit_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/redclone/red/internal/audit"
)

func TestRecordsAreWrittenAsEncodingJSONWritesThem(t *testing.T) {
	at := time.Date(2026, 5, 1, 9, 30, 0, 123456000, time.UTC)
	cases := []struct {
		name   string
		seq    int64
		prev   []byte
		closed string
		events []audit.Event
	}{
		{name: "a chain's first record", seq: 1, events: []audit.Event{{At: at, User: "anna", Workstation: "ws-1", Action: audit.Login, Operation: "red serve", Outcome: audit.Success}}},
		{name: "a close record without events", seq: 7, prev: []byte{1, 2, 3}, closed: "idle lock"},
		{name: "events with every field", seq: 2, prev: bytes.Repeat([]byte{0xfe}, 32), events: []audit.Event{
			{At: at, User: "ben", Workstation: "ws-2", Client: "kasse-pvs", Action: audit.Write, Type: "Patient", Operation: "Bundle transaction",
				Entities: []audit.Entity{{Type: "Patient", Token: []byte("0123456789abcdef"), Version: 3, Change: audit.Update}, {Type: "Bundle", Token: []byte{0}}},
				Patients: []string{"Patient/60151", "kvnr:X110614233"}, Outcome: "conflict", Status: 409},
			{At: at.Add(time.Second), Action: audit.Read, Outcome: audit.Success},
		}},
		{name: "strings that need escaping", seq: 3, prev: []byte{9}, events: []audit.Event{
			{At: at, User: "Jürgen \"J\" <admin> & co\\\n", Action: audit.Operation, Operation: "$getepastatus\t", Outcome: audit.Success, Status: 201}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fast, std, err := audit.EncodeBlock("chain-1", c.seq, c.prev, at, c.closed, c.events)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fast, std) {
				t.Errorf("written\n%s\nwant\n%s", fast, std)
			}
		})
	}
}
