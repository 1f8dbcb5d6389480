package konnektorsim

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/wire"
)

// vsdVersion is the CDM version of the VSD documents.
const vsdVersion = "5.2.0"

// defaultPZKey is the VSDM HMAC key when the configuration names none.
const defaultPZKey = "7265642d73696d756c61746f722d7673646d2d686d61632d6b65792d30303031"

// readVSD returns the insurance data of an eGK, gzip-compressed ISO-8859-15 XML in base64 as
// the Konnektors deliver them, and after an online check a Prüfungsnachweis.
func (s *Simulator) readVSD(req *soapRequest) (*response, error) {
	egk, err := s.cardArg(req, "EhcHandle")
	if err != nil {
		return nil, err
	}
	if egk.cfg.Type != konnektor.CardEGK {
		return nil, faultf(konnektor.CodeWrongCardType, "EhcHandle %s ist keine eGK, sondern %s", egk.cfg.Handle, egk.cfg.Type)
	}
	hpc, err := s.cardArg(req, "HpcHandle")
	if err != nil {
		return nil, err
	}
	switch hpc.cfg.Type {
	case konnektor.CardSMCB:
		if err := s.requireVerified(hpc, konnektor.PinSMC); err != nil {
			return nil, err
		}
	case konnektor.CardHBA:
	default:
		return nil, faultf(konnektor.CodeWrongCardType, "HpcHandle %s ist weder SMC-B noch HBA", hpc.cfg.Handle)
	}
	online, err := boolArg(req.op, "PerformOnlineCheck", false)
	if err != nil {
		return nil, err
	}
	receipt, err := boolArg(req.op, "ReadOnlineReceipt", false)
	if err != nil {
		return nil, err
	}
	in := egk.cfg.Insured
	now := s.now()
	resp := newResponse(req.ns, "ReadVSDResponse")
	for _, part := range []struct {
		name  string
		build func(*konnektor.PersonalData, *konnektor.InsuranceData, *konnektor.ProtectedData) *etree.Document
	}{
		{"PersoenlicheVersichertendaten", personalDocument},
		{"AllgemeineVersicherungsdaten", insuranceDocument},
		{"GeschuetzteVersichertendaten", protectedDocument},
	} {
		protected := in.Protected
		if protected == nil {
			protected = &konnektor.ProtectedData{CopaymentStatus: "0"}
		}
		doc := part.build(&in.Personal, &in.Insurance, protected)
		data, err := latin9Document(doc)
		if err != nil {
			return nil, err
		}
		z, err := gzipBase64(data)
		if err != nil {
			return nil, err
		}
		add(resp.op, "m:"+part.name, z)
	}
	st := resp.op.CreateElement("m:VSD_Status")
	add(st, "m:Status", "0")
	add(st, "m:Timestamp", xsDateTime(now))
	add(st, "m:Version", vsdVersion)
	if online && receipt {
		pn, err := s.pruefungsnachweis(in, now)
		if err != nil {
			return nil, err
		}
		add(resp.op, "m:Pruefungsnachweis", pn)
	}
	return resp, nil
}

func vsdRoot(name string) (*etree.Document, *etree.Element) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="ISO-8859-15" standalone="yes"`)
	root := doc.CreateElement(name)
	root.CreateAttr("xmlns", konnektor.NSVSD)
	root.CreateAttr("CDM_VERSION", vsdVersion)
	return doc, root
}

// opt appends a child only when value is not empty.
func opt(parent *etree.Element, name, value string) {
	if value != "" {
		add(parent, name, value)
	}
}

func personalDocument(p *konnektor.PersonalData, _ *konnektor.InsuranceData, _ *konnektor.ProtectedData) *etree.Document {
	doc, root := vsdRoot("UC_PersoenlicheVersichertendatenXML")
	v := root.CreateElement("Versicherter")
	add(v, "Versicherten_ID", p.KVNR)
	person := v.CreateElement("Person")
	add(person, "Geburtsdatum", p.BirthDate)
	add(person, "Vorname", p.GivenName)
	add(person, "Nachname", p.FamilyName)
	add(person, "Geschlecht", p.Sex)
	opt(person, "Vorsatzwort", p.Prefix)
	opt(person, "Namenszusatz", p.NameSuffix)
	opt(person, "Titel", p.Title)
	addr := person.CreateElement("StrassenAdresse")
	opt(addr, "Postleitzahl", p.PostalCode)
	add(addr, "Ort", p.City)
	country := cmp.Or(p.CountryCode, "D")
	add(addr.CreateElement("Land"), "Wohnsitzlaendercode", country)
	opt(addr, "Strasse", p.Street)
	opt(addr, "Hausnummer", p.HouseNumber)
	opt(addr, "Anschriftenzusatz", p.AddressSupplement)
	return doc
}

func insuranceDocument(_ *konnektor.PersonalData, ins *konnektor.InsuranceData, _ *konnektor.ProtectedData) *etree.Document {
	doc, root := vsdRoot("UC_AllgemeineVersicherungsdatenXML")
	v := root.CreateElement("Versicherter")
	cov := v.CreateElement("Versicherungsschutz")
	add(cov, "Beginn", ins.CoverageStart)
	opt(cov, "Ende", ins.CoverageEnd)
	country := cmp.Or(ins.PayerCountryCode, "D")
	payer := cov.CreateElement("Kostentraeger")
	add(payer, "Kostentraegerkennung", ins.PayerIK)
	add(payer, "Kostentraegerlaendercode", country)
	add(payer, "Name", ins.PayerName)
	billingIK, billingName := ins.BillingIK, ins.BillingName
	if billingIK == "" {
		billingIK, billingName = ins.PayerIK, ins.PayerName
	}
	billing := payer.CreateElement("AbrechnenderKostentraeger")
	add(billing, "Kostentraegerkennung", billingIK)
	add(billing, "Kostentraegerlaendercode", country)
	add(billing, "Name", billingName)
	gkv := v.CreateElement("Zusatzinfos").CreateElement("ZusatzinfosGKV")
	add(gkv, "Versichertenart", ins.InsuredType)
	if ins.WOP != "" {
		add(gkv.CreateElement("Zusatzinfos_Abrechnung_GKV"), "WOP", ins.WOP)
	}
	return doc
}

func protectedDocument(_ *konnektor.PersonalData, _ *konnektor.InsuranceData, p *konnektor.ProtectedData) *etree.Document {
	doc, root := vsdRoot("UC_GeschuetzteVersichertendatenXML")
	z := root.CreateElement("Zuzahlungsstatus")
	add(z, "Status", p.CopaymentStatus)
	opt(z, "Gueltig_bis", p.CopaymentValidUntil)
	opt(root, "BesonderePersonengruppe", p.SpecialGroup)
	opt(root, "DMP_Kennzeichnung", p.DMP)
	sel := root.CreateElement("Selektivvertraege")
	add(sel, "Aerztlich", "9")
	add(sel, "Zahnaerztlich", "9")
	return doc
}

// pruefungsnachweis builds the PN document (gzip, base64) with the Prüfziffer.
func (s *Simulator) pruefungsnachweis(in *InsuredConfig, now time.Time) (string, error) {
	result := in.PruefungsnachweisResult
	if result == 0 {
		result = 2
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8" standalone="yes"`)
	pn := doc.CreateElement("PN")
	pn.CreateAttr("xmlns", konnektor.NSPruefungsnachweis)
	pn.CreateAttr("CDM_VERSION", "1.0.0")
	add(pn, "TS", now.UTC().Format("20060102150405"))
	add(pn, "E", strconv.Itoa(result))
	if result <= 3 {
		pz, err := s.pruefziffer(in.Personal.KVNR, now)
		if err != nil {
			return "", err
		}
		add(pn, "PZ", pz)
	}
	var buf bytes.Buffer
	if _, err := doc.WriteTo(&buf); err != nil {
		return "", err
	}
	return gzipBase64(buf.Bytes())
}

// pruefziffer computes PZ = base64(KVNR ‖ unix time ‖ "U" ‖ kid ‖ HMAC-SHA256(key, …)[:24]).
func (s *Simulator) pruefziffer(kvnr string, now time.Time) (string, error) {
	keyHex, kid := s.cfg.Pruefziffer.HMACKey, s.cfg.Pruefziffer.KID
	if keyHex == "" {
		keyHex = defaultPZKey
	}
	if kid == "" {
		kid = "S1"
	}
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		return "", fmt.Errorf("pruefziffer key: %w", err)
	}
	msg := fmt.Sprintf("%s%010d%s%s", kvnr, now.Unix(), "U", kid)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(append([]byte(msg), mac.Sum(nil)[:24]...)), nil
}

// latin9Document serialises a document (declared ISO-8859-15) in ISO-8859-15.
func latin9Document(doc *etree.Document) ([]byte, error) {
	s, err := doc.WriteToString()
	if err != nil {
		return nil, err
	}
	return wire.EncodeLatin9(s)
}

// gzipBase64 compresses without header time (so the output depends on the input only) and
// encodes base64.
func gzipBase64(data []byte) (string, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := zw.Write(data); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}
