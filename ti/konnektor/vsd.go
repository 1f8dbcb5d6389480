package konnektor

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/wire"
)

// PersonalData is UC_PersoenlicheVersichertendatenXML/Versicherter (VSD 5.2). The JSON names
// are those of the simulator's card configuration.
type PersonalData struct {
	KVNR              string `json:"kvnr"`                        // Versicherten_ID
	BirthDate         string `json:"birthDate"`                   // Geburtsdatum, YYYYMMDD
	GivenName         string `json:"givenName"`                   // Vorname
	FamilyName        string `json:"familyName"`                  // Nachname
	Sex               string `json:"sex"`                         // Geschlecht: M, W, D, X
	Prefix            string `json:"prefix,omitempty"`            // Vorsatzwort
	NameSuffix        string `json:"nameSuffix,omitempty"`        // Namenszusatz
	Title             string `json:"title,omitempty"`             // Titel
	Street            string `json:"street,omitempty"`            // StrassenAdresse/Strasse
	HouseNumber       string `json:"houseNumber,omitempty"`       // StrassenAdresse/Hausnummer
	PostalCode        string `json:"postalCode,omitempty"`        // StrassenAdresse/Postleitzahl
	City              string `json:"city,omitempty"`              // StrassenAdresse/Ort
	CountryCode       string `json:"countryCode,omitempty"`       // Land/Wohnsitzlaendercode, e.g. D
	AddressSupplement string `json:"addressSupplement,omitempty"` // Anschriftenzusatz
}

// InsuranceData is UC_AllgemeineVersicherungsdatenXML/Versicherter.
type InsuranceData struct {
	CoverageStart    string `json:"coverageStart"`              // Versicherungsschutz/Beginn, YYYYMMDD
	CoverageEnd      string `json:"coverageEnd,omitempty"`      // Versicherungsschutz/Ende
	PayerIK          string `json:"payerIk"`                    // Kostentraeger/Kostentraegerkennung
	PayerCountryCode string `json:"payerCountryCode,omitempty"` // Kostentraegerlaendercode, default D
	PayerName        string `json:"payerName"`                  // Kostentraeger/Name
	BillingIK        string `json:"billingIk,omitempty"`        // AbrechnenderKostentraeger/Kostentraegerkennung
	BillingName      string `json:"billingName,omitempty"`      // AbrechnenderKostentraeger/Name
	InsuredType      string `json:"insuredType"`                // Versichertenart: 1 member, 3 family, 5 pensioner
	WOP              string `json:"wop,omitempty"`              // Wohnortprinzip, two digits
}

// ProtectedData is UC_GeschuetzteVersichertendatenXML.
type ProtectedData struct {
	CopaymentStatus     string `json:"copaymentStatus"`               // Zuzahlungsstatus/Status: 0 or 1 (exempt)
	CopaymentValidUntil string `json:"copaymentValidUntil,omitempty"` // Zuzahlungsstatus/Gueltig_bis
	SpecialGroup        string `json:"specialGroup,omitempty"`        // BesonderePersonengruppe
	DMP                 string `json:"dmp,omitempty"`                 // DMP_Kennzeichnung
}

// VSDStatus is VSD_Status of ReadVSD.
type VSDStatus struct {
	Status    string // 0: VSD are current, 1: outdated (online check not possible)
	Timestamp time.Time
	Version   string
}

// Pruefungsnachweis is the decoded PN (proof of the online check).
type Pruefungsnachweis struct {
	Timestamp  time.Time // TS
	Result     int       // E: 1 updated, 2 no update needed, 3 update impossible, 4 AUT cert invalid, 5 online check impossible, 6 = 3 past max. offline time
	ErrorCode  string    // EC, when present
	CheckDigit string    // PZ, base64 (Prüfziffer)
}

// VSD is the answer of ReadVSD.
type VSD struct {
	Personal  PersonalData
	Insurance InsuranceData
	Protected *ProtectedData // nil when not returned
	Status    VSDStatus
	// Pruefungsnachweis is nil when the Konnektor returned none.
	Pruefungsnachweis *Pruefungsnachweis
	// PruefungsnachweisBase64 is the Pruefungsnachweis element as received (base64 of gzip):
	// the pharmacy passes it to the E-Rezept-Fachdienst as pnw.
	PruefungsnachweisBase64 string
}

// HCV returns the hcv parameter of the pharmacy's eGK task search: the first five bytes of
// SHA-256 over the ISO-8859-15 bytes of Versicherungsschutz/Beginn (spaces removed) and of the
// trimmed street, the top bit of the first byte cleared, base64url without padding.
func (v VSD) HCV() (string, error) {
	begin, err := wire.EncodeLatin9(strings.ReplaceAll(v.Insurance.CoverageStart, " ", ""))
	if err != nil {
		return "", fmt.Errorf("konnektor: hcv: %w", err)
	}
	street, err := wire.EncodeLatin9(strings.TrimSpace(v.Personal.Street))
	if err != nil {
		return "", fmt.Errorf("konnektor: hcv: %w", err)
	}
	sum := sha256.Sum256(append(begin, street...))
	h := sum[:5]
	h[0] &= 0x7f
	return base64.RawURLEncoding.EncodeToString(h), nil
}

// ReadVSD reads the insurance data of an eGK (VSDService 5.2); hpcHandle is the SMC-B (or HBA)
// that authorises the access.
func (c *Client) ReadVSD(ctx context.Context, egkHandle, hpcHandle string, performOnlineCheck, readOnlineReceipt bool) (VSD, error) {
	ep, _, err := c.endpoint(ctx, ServiceVSD, "5.2")
	if err != nil {
		return VSD{}, err
	}
	r := newRequest(NSVSDService, "ReadVSD")
	add(r.op, "m:EhcHandle", egkHandle)
	add(r.op, "m:HpcHandle", hpcHandle)
	add(r.op, "m:PerformOnlineCheck", strconv.FormatBool(performOnlineCheck))
	add(r.op, "m:ReadOnlineReceipt", strconv.FormatBool(readOnlineReceipt))
	c.addContext(r.op)
	resp, err := c.call(ctx, ep, NSVSDService, "ReadVSD", r)
	if err != nil {
		return VSD{}, err
	}
	return parseReadVSD(resp)
}

// maxVSDDocument bounds one decompressed VSD document.
const maxVSDDocument = 1 << 20

func parseReadVSD(resp *etree.Element) (VSD, error) {
	var v VSD
	personal, err := vsdDocument(resp, "PersoenlicheVersichertendaten", true)
	if err != nil {
		return VSD{}, err
	}
	person := personal.FindElement("Versicherter/Person")
	addr := personal.FindElement("Versicherter/Person/StrassenAdresse")
	v.Personal = PersonalData{
		KVNR:              text(personal, "Versicherter/Versicherten_ID"),
		BirthDate:         text(person, "Geburtsdatum"),
		GivenName:         text(person, "Vorname"),
		FamilyName:        text(person, "Nachname"),
		Sex:               text(person, "Geschlecht"),
		Prefix:            text(person, "Vorsatzwort"),
		NameSuffix:        text(person, "Namenszusatz"),
		Title:             text(person, "Titel"),
		Street:            text(addr, "Strasse"),
		HouseNumber:       text(addr, "Hausnummer"),
		PostalCode:        text(addr, "Postleitzahl"),
		City:              text(addr, "Ort"),
		CountryCode:       text(addr, "Land/Wohnsitzlaendercode"),
		AddressSupplement: text(addr, "Anschriftenzusatz"),
	}
	general, err := vsdDocument(resp, "AllgemeineVersicherungsdaten", true)
	if err != nil {
		return VSD{}, err
	}
	cov := general.FindElement("Versicherter/Versicherungsschutz")
	payer := general.FindElement("Versicherter/Versicherungsschutz/Kostentraeger")
	billing := general.FindElement("Versicherter/Versicherungsschutz/Kostentraeger/AbrechnenderKostentraeger")
	gkv := general.FindElement("Versicherter/Zusatzinfos/ZusatzinfosGKV")
	v.Insurance = InsuranceData{
		CoverageStart:    text(cov, "Beginn"),
		CoverageEnd:      text(cov, "Ende"),
		PayerIK:          text(payer, "Kostentraegerkennung"),
		PayerCountryCode: text(payer, "Kostentraegerlaendercode"),
		PayerName:        text(payer, "Name"),
		BillingIK:        text(billing, "Kostentraegerkennung"),
		BillingName:      text(billing, "Name"),
		InsuredType:      text(gkv, "Versichertenart"),
		WOP:              text(gkv, "Zusatzinfos_Abrechnung_GKV/WOP"),
	}
	protected, err := vsdDocument(resp, "GeschuetzteVersichertendaten", false)
	if err != nil {
		return VSD{}, err
	}
	if protected != nil {
		v.Protected = &ProtectedData{
			CopaymentStatus:     text(protected, "Zuzahlungsstatus/Status"),
			CopaymentValidUntil: text(protected, "Zuzahlungsstatus/Gueltig_bis"),
			SpecialGroup:        text(protected, "BesonderePersonengruppe"),
			DMP:                 text(protected, "DMP_Kennzeichnung"),
		}
	}
	v.Status = VSDStatus{Status: text(resp, "VSD_Status/Status"), Version: text(resp, "VSD_Status/Version")}
	if s := text(resp, "VSD_Status/Timestamp"); s != "" {
		if v.Status.Timestamp, err = parseTime(s); err != nil {
			return VSD{}, fmt.Errorf("konnektor: ReadVSD: VSD_Status: %w", err)
		}
	}
	if pnText := text(resp, "Pruefungsnachweis"); pnText != "" {
		pn, err := vsdDocument(resp, "Pruefungsnachweis", true)
		if err != nil {
			return VSD{}, err
		}
		v.PruefungsnachweisBase64 = strings.Join(strings.Fields(pnText), "")
		e, err := intText(pn, "E", 0)
		if err != nil {
			return VSD{}, fmt.Errorf("konnektor: ReadVSD: Pruefungsnachweis: %w", err)
		}
		proof := &Pruefungsnachweis{Result: e, ErrorCode: text(pn, "EC"), CheckDigit: text(pn, "PZ")}
		if ts := text(pn, "TS"); ts != "" {
			if proof.Timestamp, err = time.Parse("20060102150405", ts); err != nil {
				return VSD{}, fmt.Errorf("konnektor: ReadVSD: Pruefungsnachweis TS %q: %w", ts, err)
			}
		}
		v.Pruefungsnachweis = proof
	}
	return v, nil
}

// vsdDocument decodes the base64 + gzip XML document held by the child local of resp and
// returns its root element (nil if absent and not required).
func vsdDocument(resp *etree.Element, local string, required bool) (*etree.Element, error) {
	s := text(resp, local)
	if s == "" {
		if required {
			return nil, fmt.Errorf("konnektor: ReadVSD: %s missing", local)
		}
		return nil, nil
	}
	compressed, err := decodeBase64(s)
	if err != nil {
		return nil, fmt.Errorf("konnektor: ReadVSD: %s is not base64: %w", local, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, fmt.Errorf("konnektor: ReadVSD: %s is not gzip: %w", local, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxVSDDocument+1))
	if err != nil {
		return nil, fmt.Errorf("konnektor: ReadVSD: %s: %w", local, err)
	}
	if len(raw) > maxVSDDocument {
		return nil, fmt.Errorf("konnektor: ReadVSD: %s larger than %d bytes", local, maxVSDDocument)
	}
	root, err := wire.ReadXML(raw)
	if err != nil {
		return nil, fmt.Errorf("konnektor: ReadVSD: %s: %w", local, err)
	}
	return root, nil
}
