package telematik

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/ti/konnektor"
)

// signError is RED's 400 answer of $signpdf.
func signError(msg string) Answer {
	r := connectorResponse()
	text(r, "SignatureStatus", "ERROR")
	text(r, "Error", msg)
	return Answer{http.StatusBadRequest, r}
}

// SignPDF answers POST Bundle?action=$signpdf&cardname=…: the PDF in the bundle's one
// DocumentReference (attachment.data, base64) is signed (QES, CAdES enveloping) with the named
// HBA. The Konnektor asks for the PIN at the card terminal when the card is not unlocked yet;
// several documents may follow with one PIN entry under Komfortsignatur. With filepath, the
// signature is also saved as a new file in the directory for signed PDFs (SignedPDFs; refused
// when there is none). Answers are RED's ConnectorResponse: 200 with SignatureStatus OK and
// SignatureData, or 400 with SignatureStatus ERROR and the reason.
func (s *Service) SignPDF(ctx context.Context, q url.Values, body []byte) (Answer, error) {
	if err := require(ctx, "$signpdf", physicianOrPharmacist); err != nil {
		return Answer{}, err
	}
	pdf, title, refused := pdfOf(body)
	if refused != "" {
		return signError(refused), nil
	}
	if q.Get("cardname") == "" && q.Get("card") == "" {
		return signError("Name the HBA: cardname"), nil
	}
	var out *signedFile // reserved before the card is used, removed again unless saved
	if p := q.Get("filepath"); p != "" {
		if out, refused = s.SignedPDFs.create(p); refused != "" {
			return signError(refused), nil
		}
		defer out.discard()
	}
	card, err := s.card(ctx, q)
	if code := fhir.CodeOf(err); code != "" && code != fhir.CodeTransient && code != fhir.CodeTimeout {
		issues, _ := fhir.Explain(err)
		return signError(issues[0].Diagnostics), nil
	}
	if err != nil {
		return Answer{}, err
	}
	if !cardIs(card, konnektor.CardHBA) {
		return signError("The card is not an HBA; only an HBA signs documents"), nil
	}
	if res, err := s.unlockQES(ctx, card.Handle, nil); err != nil {
		return Answer{}, err
	} else if res != konnektor.PinOK {
		return signError("PIN.QES: " + string(res)), nil
	}
	var sigs []konnektor.Signature
	if err := s.call(ctx, "Konnektor", func(ctx context.Context) (err error) {
		sigs, err = s.Konnektor.SignDocuments(ctx, card.Handle, []konnektor.Document{{ShortText: shorten(title, 30), MimeType: "application/pdf", Content: pdf}})
		return err
	}); err != nil {
		return Answer{}, err
	}
	if len(sigs) != 1 || len(sigs[0].Value) == 0 {
		return signError("The Konnektor returned no signature"), nil
	}
	if out != nil {
		if err := out.save(sigs[0].Value); err != nil {
			return signError("The signature could not be saved at filepath"), nil
		}
	}
	r := connectorResponse()
	text(r, "SignatureStatus", "OK")
	text(r, "SignatureData", base64.StdEncoding.EncodeToString(sigs[0].Value))
	return Answer{http.StatusOK, r}, nil
}

// pdfOf finds the PDF in the bundle's one DocumentReference and its title, or says why not
// (refused) in RED's words.
func pdfOf(body []byte) (pdf []byte, title, refused string) {
	b, err := fhir.Parse(body, fhir.DefaultLimits)
	if err != nil || b.Tag != "Bundle" {
		return nil, "", "No valid xml file"
	}
	title = "Dokument"
	for _, e := range b.SelectElements("entry") {
		res := fhir.ResourceOf(fhir.Child(e, "resource"))
		if res == nil || res.Tag != "DocumentReference" {
			continue
		}
		att := res.FindElement("content/attachment")
		data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(fhir.ChildValue(att, "data")), ""))
		if err != nil || len(data) == 0 {
			return nil, "", "The DocumentReference holds no base64 PDF in content.attachment.data"
		}
		if !bytes.HasPrefix(data, []byte("%PDF-")) {
			return nil, "", "The document is not a PDF"
		}
		if pdf != nil {
			return nil, "", "Send one DocumentReference per request"
		}
		pdf = data
		if t := fhir.ChildValue(att, "title"); t != "" {
			title = t
		}
	}
	if pdf == nil {
		return nil, "", "The bundle holds no DocumentReference"
	}
	return pdf, title, ""
}

func (s *Service) signatureMode(ctx context.Context, handle string) (string, error) {
	var m konnektor.SignatureMode
	err := s.call(ctx, "Konnektor", func(ctx context.Context) (err error) {
		m, err = s.Konnektor.GetSignatureMode(ctx, handle)
		return err
	})
	if err != nil || m.Session == nil {
		return konnektor.ModePIN, err
	}
	return m.Session.Mode, nil
}

// unlockQES asks for the HBA's signature PIN at the card terminal (telling asking, when set,
// that it does) unless the PIN is verified already or Komfortsignatur is on, and returns the
// outcome: konnektor.PinOK when the card may sign.
func (s *Service) unlockQES(ctx context.Context, handle string, asking func()) (konnektor.PinResult, error) {
	var st konnektor.PinStatus
	if err := s.call(ctx, "Konnektor", func(ctx context.Context) (err error) {
		st, err = s.Konnektor.GetPinStatus(ctx, handle, konnektor.PinQES)
		return err
	}); err != nil {
		return "", err
	}
	if st.State == konnektor.PinVerified {
		return konnektor.PinOK, nil
	}
	if mode, _ := s.signatureMode(ctx, handle); mode == konnektor.ModeComfort {
		return konnektor.PinOK, nil
	}
	if asking != nil {
		asking()
	}
	var r konnektor.PinResponse
	if err := s.call(ctx, "Konnektor", func(ctx context.Context) (err error) {
		r, err = s.Konnektor.VerifyPin(ctx, handle, konnektor.PinQES)
		return err
	}); err != nil {
		return "", err
	}
	return r.Result, nil
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}
