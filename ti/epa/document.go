package epa

import (
	"errors"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"github.com/redclone/red/ti/epa/xds"
)

// Code is a coded XDS metadata value.
type Code struct {
	Code    string // nodeRepresentation
	System  string // codingScheme as an OID without urn:oid:
	Display string // display name; empty means Code
}

// Code systems (OIDs) of the IHE Deutschland value sets ePA uses.
const (
	SystemClassCode       = "1.3.6.1.4.1.19376.3.276.1.5.8"
	SystemTypeCode        = "1.3.6.1.4.1.19376.3.276.1.5.9"
	SystemFormatCode      = "1.3.6.1.4.1.19376.3.276.1.5.6"
	SystemIHEFormatCode   = "1.3.6.1.4.1.19376.1.2.3"
	SystemFacilityType    = "1.3.6.1.4.1.19376.3.276.1.5.2"
	SystemPracticeSetting = "1.3.6.1.4.1.19376.3.276.1.5.4"
	SystemAuthorRole      = "1.3.6.1.4.1.19376.3.276.1.5.13"
	SystemContentType     = "1.3.6.1.4.1.19376.3.276.1.5.12"
	SystemConfidentiality = "2.16.840.1.113883.5.25"
)

// Defaults for codes a Document leaves empty.
var (
	// DefaultFormatCode: the format follows from the MIME type.
	DefaultFormatCode = Code{Code: "urn:ihe:iti:xds:2017:mimeTypeSufficient", System: SystemIHEFormatCode, Display: "Format aus MIME Type ableitbar"}
	// DefaultConfidentialityCode: normal (use CON to upload a document hidden from institutions).
	DefaultConfidentialityCode = Code{Code: "N", System: SystemConfidentiality, Display: "normal"}
	// DefaultFacilityTypeCode: a doctor's practice.
	DefaultFacilityTypeCode = Code{Code: "PRA", System: SystemFacilityType, Display: "Arztpraxis"}
	// DefaultPracticeSettingCode: general medicine.
	DefaultPracticeSettingCode = Code{Code: "ALLG", System: SystemPracticeSetting, Display: "Allgemeinmedizin"}
	// DefaultAuthorRole: the person documenting.
	DefaultAuthorRole = Code{Code: "11", System: SystemAuthorRole, Display: "Dokumentierender"}
	// DefaultContentTypeCode: the reason for the submission as in gematik's ePA 1 sample.
	DefaultContentTypeCode = Code{Code: "8", System: SystemContentType, Display: "Veranlassung durch Patient"}
)

// Author is the person who wrote a document; the institution is the Client's.
type Author struct {
	ID         string // LANR (assigning authority 1.2.276.0.76.4.16), optional
	GivenName  string
	FamilyName string
	Prefix     string // e.g. "Dr."
	Role       Code   // empty means DefaultAuthorRole
}

// Document is a document with its XDS metadata, to upload or as retrieved.
type Document struct {
	// ID is XDSDocumentEntry.uniqueId; Upload makes a 2.25 OID when it is empty.
	ID string
	// EntryUUID is XDSDocumentEntry.entryUUID (urn:uuid:…); Upload makes one when it is empty.
	EntryUUID string

	Title        string
	Comments     string
	MimeType     string // required, e.g. application/pdf
	LanguageCode string // empty means de-DE
	FileName     string // the URI slot, optional

	ClassCode                  Code // required, system SystemClassCode, e.g. BEF, BRI, DOK
	TypeCode                   Code // required, system SystemTypeCode, e.g. BERI, BEFU
	FormatCode                 Code // empty means DefaultFormatCode
	ConfidentialityCode        Code // empty means DefaultConfidentialityCode
	HealthcareFacilityTypeCode Code // empty means DefaultFacilityTypeCode
	PracticeSettingCode        Code // empty means DefaultPracticeSettingCode
	ContentTypeCode            Code // SubmissionSet.contentTypeCode; empty means DefaultContentTypeCode

	CreationTime     time.Time // empty means now
	ServiceStartTime time.Time // optional
	ServiceStopTime  time.Time // optional
	Author           Author

	// Replaces is the EntryUUID of a document this one replaces (RPLC association).
	Replaces string

	Content []byte
}

// DocumentEntry is the registry metadata of a document in the record.
type DocumentEntry struct {
	ID              string // uniqueId: what Retrieve takes
	EntryUUID       string
	RepositoryID    string
	HomeCommunityID string
	Status          string // Approved or Deprecated

	Title        string
	Comments     string
	MimeType     string
	LanguageCode string
	FileName     string

	ClassCode                  Code
	TypeCode                   Code
	FormatCode                 Code
	ConfidentialityCodes       []Code
	HealthcareFacilityTypeCode Code
	PracticeSettingCode        Code

	CreationTime      time.Time
	Size              int64
	Hash              string // SHA-1, hex
	AuthorInstitution string
	AuthorTelematikID string
}

// XDS identifiers (IHE ITI TF-3 4.2.5) used in metadata.
const (
	schemeSSAuthor      = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
	schemeSSContentType = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
	schemeDEAuthor      = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
	objectTypePackage   = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"

	kvnrAssigningAuthority   = "&1.2.276.0.76.4.8&ISO"
	telematikIDAuthority     = "&1.2.276.0.76.4.188&ISO"
	lanrAssigningAuthority   = "&1.2.276.0.76.4.16&ISO"
	dtmLayout                = "20060102150405"
	submissionSetSymbolicID  = "SubmissionSet01"
	submissionSetAssociation = "HasMember01"
)

// patientID is the XDS patient id of a KVNR.
func patientID(kvnr string) string { return kvnr + "^^^" + kvnrAssigningAuthority }

// dtm writes t as an XDS time (UTC).
func dtm(t time.Time) string { return t.UTC().Format(dtmLayout) }

// parseDTM reads an XDS time of 4 to 14 digits.
func parseDTM(v string) time.Time {
	if len(v) < 4 || len(v) > 14 || len(v)%2 != 0 {
		return time.Time{}
	}
	t, err := time.Parse(dtmLayout[:len(v)], v)
	if err != nil {
		return time.Time{}
	}
	return t
}

// hl7Escape escapes the HL7 V2 delimiters in a component value.
func hl7Escape(s string) string {
	return strings.NewReplacer(`\`, `\E\`, `^`, `\S\`, `&`, `\T\`, `~`, `\R\`, `|`, `\F\`).Replace(s)
}

func hl7Unescape(s string) string {
	return strings.NewReplacer(`\E\`, `\`, `\S\`, `^`, `\T\`, `&`, `\R\`, `~`, `\F\`, `|`).Replace(s)
}

// newUUID returns a random (version 4) UUID as urn:uuid:….
func newUUID(r io.Reader) (string, error) {
	u, err := uuid.NewRandomFromReader(r)
	if err != nil {
		return "", errors.New("epa: no randomness for a new id")
	}
	return u.URN(), nil
}

// uuidOID turns a urn:uuid into an OID under 2.25 (ITU-T X.667).
func uuidOID(u string) string {
	hexDigits := strings.ReplaceAll(strings.TrimPrefix(u, "urn:uuid:"), "-", "")
	n, ok := new(big.Int).SetString(hexDigits, 16)
	if !ok {
		return ""
	}
	return "2.25." + n.String()
}

func orDefault(c, dflt Code) Code {
	if c.Code == "" {
		return dflt
	}
	return c
}

func addSlot(parent *etree.Element, name string, values ...string) {
	sl := parent.CreateElement("rim:Slot")
	sl.CreateAttr("name", name)
	vl := sl.CreateElement("rim:ValueList")
	for _, v := range values {
		vl.CreateElement("rim:Value").SetText(v)
	}
}

func addLocalized(parent *etree.Element, tag, value string) {
	ls := parent.CreateElement(tag).CreateElement("rim:LocalizedString")
	ls.CreateAttr("xml:lang", "de-DE")
	ls.CreateAttr("charset", "UTF-8")
	ls.CreateAttr("value", value)
}

// addCode writes a coded classification of object.
func (b *metadataBuilder) addCode(parent *etree.Element, object, scheme string, c Code) {
	cl := parent.CreateElement("rim:Classification")
	cl.CreateAttr("classificationScheme", scheme)
	cl.CreateAttr("classifiedObject", object)
	cl.CreateAttr("nodeRepresentation", c.Code)
	cl.CreateAttr("objectType", xds.ObjectTypeClassification)
	cl.CreateAttr("id", b.id())
	addSlot(cl, "codingScheme", c.System)
	display := c.Display
	if display == "" {
		display = c.Code
	}
	addLocalized(cl, "rim:Name", display)
}

func (b *metadataBuilder) addExternalID(parent *etree.Element, object, scheme, value, name string) {
	x := parent.CreateElement("rim:ExternalIdentifier")
	x.CreateAttr("identificationScheme", scheme)
	x.CreateAttr("registryObject", object)
	x.CreateAttr("value", value)
	x.CreateAttr("objectType", xds.ObjectTypeExternalID)
	x.CreateAttr("id", b.id())
	addLocalized(x, "rim:Name", name)
}

// metadataBuilder numbers the symbolic ids of one submission.
type metadataBuilder struct{ n int }

func (b *metadataBuilder) id() string {
	b.n++
	return "id" + strconv.Itoa(b.n)
}

// author writes the author classification (institution with Telematik-ID, person, role).
func (c *Client) author(b *metadataBuilder, parent *etree.Element, object, scheme string, a Author) {
	cl := parent.CreateElement("rim:Classification")
	cl.CreateAttr("classificationScheme", scheme)
	cl.CreateAttr("classifiedObject", object)
	cl.CreateAttr("nodeRepresentation", "")
	cl.CreateAttr("objectType", xds.ObjectTypeClassification)
	cl.CreateAttr("id", b.id())
	if a.FamilyName != "" || a.GivenName != "" || a.ID != "" {
		authority := ""
		if a.ID != "" {
			authority = lanrAssigningAuthority
		}
		addSlot(cl, "authorPerson", strings.Join([]string{hl7Escape(a.ID), hl7Escape(a.FamilyName),
			hl7Escape(a.GivenName), "", "", hl7Escape(a.Prefix), "", "", authority}, "^"))
	}
	name := c.InstitutionName
	if name == "" {
		name = c.TelematikID
	}
	addSlot(cl, "authorInstitution", hl7Escape(name)+"^^^^^"+telematikIDAuthority+"^^^^"+hl7Escape(c.TelematikID))
	role := orDefault(a.Role, DefaultAuthorRole)
	addSlot(cl, "authorRole", hl7Escape(role.Code)+"^^^&"+role.System+"&ISO")
}
