package konnektor

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/wire"
)

// Vendors differ in namespace prefixes (ns2, m0, CONN, none at all) and sometimes in the
// namespace version of an element, so responses are read by local name: the etree paths below
// name no prefixes.

// text is the trimmed text of the element at path below e, "" when e is nil or there is none.
func text(e *etree.Element, path string) string {
	if e == nil {
		return ""
	}
	return wire.Text(e.FindElement(path))
}

// attr is the attribute name of the element at path below e, "" when there is none.
func attr(e *etree.Element, path, name string) string {
	if e == nil {
		return ""
	}
	if el := e.FindElement(path); el != nil {
		return el.SelectAttrValue(name, "")
	}
	return ""
}

// intText parses the text at path below e; absent or empty gives def.
func intText(e *etree.Element, path string, def int) (int, error) {
	s := text(e, path)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", path, s)
	}
	return n, nil
}

// boolText parses the xs:boolean at path below e.
func boolText(e *etree.Element, path string) bool {
	s := text(e, path)
	return s == "true" || s == "1"
}

// parseTime reads xs:dateTime and xs:date forms vendors use ("2021-01-22T17:42:00.983Z",
// "2022-11-30Z", "2024-08-13").
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02Z07:00", "2006-01-02Z", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date or time", s)
}

// decodeBase64 decodes base64 that may be wrapped over lines; some Konnektors leave out the
// padding.
func decodeBase64(s string) ([]byte, error) {
	if b, err := wire.DecodeBase64(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.Join(strings.Fields(s), ""), "="))
}
