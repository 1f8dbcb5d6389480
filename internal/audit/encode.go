package audit

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendBlock appends b as JSON, as encoding/json writes it (the events without reflection: a
// busy server writes thousands a second). json.Unmarshal reads it back.
func appendBlock(buf []byte, b *block) ([]byte, error) {
	buf = append(buf, `{"chain":`...)
	buf = appendString(buf, b.Chain)
	buf = strconv.AppendInt(append(buf, `,"seq":`...), b.Seq, 10)
	if len(b.Prev) > 0 {
		buf = appendBytes(append(buf, `,"prev":`...), b.Prev)
	}
	buf = appendTime(append(buf, `,"at":`...), b.At)
	if b.Open != nil {
		open, err := json.Marshal(b.Open)
		if err != nil {
			return nil, err
		}
		buf = append(append(buf, `,"open":`...), open...)
	}
	if b.Close != "" {
		buf = appendString(append(buf, `,"close":`...), b.Close)
	}
	if len(b.Events) > 0 {
		buf = append(buf, `,"events":[`...)
		for i := range b.Events {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendEvent(buf, &b.Events[i])
		}
		buf = append(buf, ']')
	}
	return append(buf, '}'), nil
}

// appendEvent appends ev as encoding/json writes an Event.
func appendEvent(buf []byte, ev *Event) []byte {
	buf = appendTime(append(buf, `{"t":`...), ev.At)
	buf = appendField(buf, "u", ev.User)
	buf = appendField(buf, "w", ev.Workstation)
	buf = appendField(buf, "c", ev.Client)
	buf = appendString(append(buf, `,"a":`...), ev.Action)
	buf = appendField(buf, "y", ev.Type)
	buf = appendField(buf, "o", ev.Operation)
	if len(ev.Entities) > 0 {
		buf = append(buf, `,"e":[`...)
		for i, en := range ev.Entities {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(append(buf, `{"y":`...), en.Type)
			if len(en.Token) > 0 {
				buf = appendBytes(append(buf, `,"k":`...), en.Token)
			}
			if en.Version != 0 {
				buf = strconv.AppendInt(append(buf, `,"v":`...), en.Version, 10)
			}
			buf = append(appendField(buf, "c", en.Change), '}')
		}
		buf = append(buf, ']')
	}
	if len(ev.Patients) > 0 {
		buf = append(buf, `,"p":[`...)
		for i, p := range ev.Patients {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, p)
		}
		buf = append(buf, ']')
	}
	buf = appendString(append(buf, `,"r":`...), ev.Outcome)
	if ev.Status != 0 {
		buf = strconv.AppendInt(append(buf, `,"s":`...), int64(ev.Status), 10)
	}
	return append(buf, '}')
}

// appendField appends ,"name":value unless value is "" (omitempty).
func appendField(buf []byte, name, value string) []byte {
	if value == "" {
		return buf
	}
	buf = append(append(append(buf, `,"`...), name...), `":`...)
	return appendString(buf, value)
}

// appendString appends s as a JSON string.
func appendString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			quoted, _ := json.Marshal(s) // the rare string that needs escaping: as encoding/json does it
			return append(buf, quoted...)
		}
	}
	return append(append(append(buf, '"'), s...), '"')
}

// appendBytes appends b as encoding/json writes a []byte: standard base64 in a string.
func appendBytes(buf, b []byte) []byte {
	return append(base64.StdEncoding.AppendEncode(append(buf, '"'), b), '"')
}

// appendTime appends t as encoding/json writes a time.Time.
func appendTime(buf []byte, t time.Time) []byte {
	return append(t.AppendFormat(append(buf, '"'), time.RFC3339Nano), '"')
}
