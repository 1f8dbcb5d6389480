package audit

import (
	"encoding/json"
	"time"
)

// EncodeBlock writes a record's block of events (as Trail.writes does) and, for comparison, as
// encoding/json writes it.
func EncodeBlock(chain string, seq int64, prev []byte, at time.Time, closed string, events []Event) (fast, std []byte, err error) {
	b := &block{Chain: chain, Seq: seq, Prev: prev, At: at, Close: closed, Events: events}
	if seq == 1 {
		b.Open = &opening{Session: "s", Lane: 1, Workstation: "ws", User: "u", Started: at, Witness: []seen{{Chain: "c", Seq: 2, MAC: prev}}}
	}
	if fast, err = appendBlock(nil, b); err != nil {
		return nil, nil, err
	}
	std, err = json.Marshal(b)
	return fast, std, err
}

// Answered is answered: the resources and patients of an answer document.
var Answered = answered
