package telematik

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// Any request body is answered: with the PDF of its one DocumentReference, or with a refusal.
func FuzzPDFOf(f *testing.F) {
	doc := func(data string) []byte {
		return []byte(`<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/><entry><resource><DocumentReference><content><attachment><title value="Brief"/><data value="` +
			data + `"/></attachment></content></DocumentReference></resource></entry></Bundle>`)
	}
	for _, seed := range [][]byte{
		doc(base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 letter"))),
		doc("not base64"),
		doc(base64.StdEncoding.EncodeToString([]byte("GIF89a"))),
		[]byte(`<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/></Bundle>`),
		[]byte("this is not xml"),
		nil,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pdf, title, refused := pdfOf(body)
		if refused == "" && (!bytes.HasPrefix(pdf, []byte("%PDF-")) || title == "") {
			t.Fatalf("accepted %q with title %q", pdf, title)
		}
		if refused != "" && pdf != nil {
			t.Fatalf("refused (%s) with a PDF", refused)
		}
	})
}
