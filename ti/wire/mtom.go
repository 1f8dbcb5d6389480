package wire

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/beevik/etree"
)

// NSXOP is the namespace of xop:Include, by which an MTOM envelope names an attachment.
const NSXOP = "http://www.w3.org/2004/08/xop/include"

// Part is a document sent or received as an MTOM/XOP attachment.
type Part struct {
	ID       string // Content-ID without angle brackets
	MimeType string
	Data     []byte
}

// MTOM packs SOAP 1.2 envelopes with their attachments as multipart/related (MTOM/XOP).
type MTOM struct {
	RootID   string // Content-ID of the envelope part, without angle brackets
	Action   string // the SOAP action named in the envelope part's type; "" names none
	Boundary string // the MIME boundary; "" for a random one
}

// Pack returns the multipart/related body holding envelope and then parts, and its Content-Type.
func (m MTOM) Pack(envelope []byte, parts []Part) ([]byte, string, error) {
	soapType := "application/soap+xml"
	if m.Action != "" {
		soapType += `; action="` + m.Action + `"`
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if m.Boundary != "" {
		if err := mw.SetBoundary(m.Boundary); err != nil {
			return nil, "", err
		}
	}
	root := Part{ID: m.RootID, Data: envelope,
		MimeType: `application/xop+xml; charset=UTF-8; type="` + strings.ReplaceAll(soapType, `"`, `\"`) + `"`}
	for _, p := range append([]Part{root}, parts...) {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.MimeType},
			"Content-Transfer-Encoding": {"binary"},
			"Content-Id":                {"<" + p.ID + ">"},
		})
		if err != nil {
			return nil, "", err
		}
		if _, err := w.Write(p.Data); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	ct := mime.FormatMediaType("multipart/related", map[string]string{
		"type":       "application/xop+xml",
		"boundary":   mw.Boundary(),
		"start":      "<" + m.RootID + ">",
		"start-info": soapType,
	})
	return buf.Bytes(), ct, nil
}

// UnpackMTOM splits a multipart/related body, given the parameters of its Content-Type, into
// the root part (the one named by start, else the first) and the other parts by Content-ID
// without angle brackets. Parts sent with Content-Transfer-Encoding base64 are decoded.
func UnpackMTOM(body []byte, params map[string]string) (root []byte, attachments map[string][]byte, err error) {
	if params["boundary"] == "" {
		return nil, nil, errors.New("the multipart/related body has no boundary")
	}
	start := strings.Trim(params["start"], "<>")
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	attachments = map[string][]byte{}
	for first := true; ; first = false {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, errors.New("the multipart/related body is malformed")
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, nil, errors.New("the multipart/related body is malformed")
		}
		if strings.EqualFold(strings.TrimSpace(p.Header.Get("Content-Transfer-Encoding")), "base64") {
			if data, err = DecodeBase64(string(data)); err != nil {
				return nil, nil, errors.New("a base64 MIME part is malformed")
			}
		}
		id := strings.Trim(strings.TrimSpace(p.Header.Get("Content-ID")), "<>")
		if (start != "" && id == start) || (start == "" && first) {
			root = data
		} else {
			attachments[id] = data
		}
	}
	if root == nil {
		return nil, nil, errors.New("the multipart/related body has no root part")
	}
	return root, attachments, nil
}

// Content reads the document an element holds: an xop:Include naming one of attachments, or
// base64 text. found is false when the element is missing or its Include names no attachment.
func Content(e *etree.Element, attachments map[string][]byte) (data []byte, found bool, err error) {
	if e == nil {
		return nil, false, nil
	}
	if inc := Child(e, NSXOP, "Include"); inc != nil {
		cid, ok := strings.CutPrefix(inc.SelectAttrValue("href", ""), "cid:")
		if !ok {
			return nil, false, nil
		}
		if d, ok := attachments[cid]; ok {
			return d, true, nil
		}
		if u, err := url.PathUnescape(cid); err == nil {
			if d, ok := attachments[u]; ok {
				return d, true, nil
			}
		}
		return nil, false, nil
	}
	data, err = DecodeBase64(e.Text())
	return data, true, err
}
