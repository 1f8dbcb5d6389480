// Package konnektor talks SOAP over HTTP to a TI Konnektor (gematik OPB5 services: service
// directory, EventService, CardService, SignatureService, AuthSignatureService,
// CertificateService, VSDService) and holds the types the Konnektor simulator
// (package konnektorsim) shares with it.
package konnektor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redclone/red/ti/wire"
)

// XML namespaces of the Konnektor interfaces (gematik api-telematik).
const (
	NSSOAP               = wire.NSSOAP11
	NSConnectorCommon    = "http://ws.gematik.de/conn/ConnectorCommon/v5.0"
	NSConnectorContext   = "http://ws.gematik.de/conn/ConnectorContext/v2.0"
	NSCardServiceCommon  = "http://ws.gematik.de/conn/CardServiceCommon/v2.0"
	NSCardService        = "http://ws.gematik.de/conn/CardService/v8.1"
	NSCardTerminalInfo   = "http://ws.gematik.de/conn/CardTerminalInfo/v8.0"
	NSEventService       = "http://ws.gematik.de/conn/EventService/v7.2"
	NSSignatureService74 = "http://ws.gematik.de/conn/SignatureService/v7.4"
	NSSignatureService75 = "http://ws.gematik.de/conn/SignatureService/v7.5"
	NSCertificateService = "http://ws.gematik.de/conn/CertificateService/v6.0"
	NSCertificateCommon  = "http://ws.gematik.de/conn/CertificateServiceCommon/v2.0"
	NSVSDService         = "http://ws.gematik.de/conn/vsds/VSDService/v5.2"
	NSError              = "http://ws.gematik.de/tel/error/v2.0"
	NSDSS                = "urn:oasis:names:tc:dss:1.0:core:schema"
	NSVerificationReport = "urn:oasis:names:tc:dss-x:1.0:profiles:verificationreport:schema#"
	NSXAdES              = "http://uri.etsi.org/01903/v1.3.2#"
	NSXMLDSig            = "http://www.w3.org/2000/09/xmldsig#"
	NSServiceDirectory   = "http://ws.gematik.de/conn/ServiceDirectory/v3.1"
	NSServiceInformation = "http://ws.gematik.de/conn/ServiceInformation/v2.0"
	NSProductInformation = "http://ws.gematik.de/int/version/ProductInformation/v1.1"
	NSVSD                = "http://ws.gematik.de/fa/vsdm/vsd/v5.2"
	NSPruefungsnachweis  = "http://ws.gematik.de/fa/vsdm/pnw/v1.0"
)

// Signature types (dss:SignatureType, Base64Signature@Type).
const (
	SignatureTypeCMS   = "urn:ietf:rfc:5652"      // CAdES
	SignatureTypeECDSA = "urn:bsi:tr:03111:ecdsa" // ExternalAuthenticate with ECC keys
)

// Service names as listed in connector.sds.
const (
	ServiceEvent         = "EventService"
	ServiceCard          = "CardService"
	ServiceSignature     = "SignatureService"
	ServiceAuthSignature = "AuthSignatureService"
	ServiceCertificate   = "CertificateService"
	ServiceVSD           = "VSDService"
)

// Context is the call context every operation carries (ConnectorContext v2.0).
type Context struct {
	MandantID      string `json:"mandantId"`
	ClientSystemID string `json:"clientSystemId"`
	WorkplaceID    string `json:"workplaceId"`
	UserID         string `json:"userId,omitempty"` // needed for Komfortsignatur
}

// CardType is a CardTypeType value (CardServiceCommon v2.0).
type CardType string

// Card types.
const (
	CardEGK     CardType = "EGK"
	CardHBA     CardType = "HBA"
	CardHBAQSig CardType = "HBA-qSig"
	CardHBAx    CardType = "HBAx"
	CardSMCB    CardType = "SMC-B"
	CardSMB     CardType = "SM-B"
	CardHSMB    CardType = "HSM-B"
	CardSMCKT   CardType = "SMC-KT"
	CardKVK     CardType = "KVK"
	CardZOD     CardType = "ZOD_2.0"
	CardUnknown CardType = "UNKNOWN"
)

// PinType names a PIN of a card (PinTyp).
type PinType string

// PIN types.
const (
	PinCH  PinType = "PIN.CH"  // cardholder PIN (eGK, HBA)
	PinQES PinType = "PIN.QES" // signature PIN of an HBA
	PinSMC PinType = "PIN.SMC" // PIN of an SMC-B
)

// PinState is a PinStatusEnum value.
type PinState string

// PIN states.
const (
	PinVerified     PinState = "VERIFIED"
	PinTransportPIN PinState = "TRANSPORT_PIN"
	PinEmptyPIN     PinState = "EMPTY_PIN"
	PinBlocked      PinState = "BLOCKED"
	PinVerifiable   PinState = "VERIFIABLE"
	PinDisabled     PinState = "DISABLED"
)

// PinResult is a PinResultEnum value.
type PinResult string

// PIN operation results.
const (
	PinOK           PinResult = "OK"
	PinError        PinResult = "ERROR"
	PinRejected     PinResult = "REJECTED"
	PinWasBlocked   PinResult = "WASBLOCKED"
	PinNowBlocked   PinResult = "NOWBLOCKED"
	PinTransportPin PinResult = "TRANSPORT_PIN"
)

// Status results (ConnectorCommon Status/Result).
const (
	ResultOK      = "OK"
	ResultWarning = "WARNING"
	ResultError   = "ERROR"
)

// Status is the Status element of a response: OK, WARNING or ERROR (some Konnektors write
// "Warning"; compare with strings.EqualFold), and for the latter two the Error the Konnektor
// attached.
type Status struct {
	Result string
	Error  *Fault // nil for OK
}

// Card is one entry of GetCards.
type Card struct {
	Handle     string
	Type       CardType
	ICCSN      string
	CtID       string
	SlotID     int
	InsertTime time.Time
	HolderName string
	KVNR       string // eGK only
	// CertificateExpiration is the date the card's certificates expire (zero if not given).
	CertificateExpiration time.Time
	// COSVersion and ObjectSystemVersion are "major.minor.revision", empty if not given.
	COSVersion          string
	ObjectSystemVersion string
}

// Filter narrows GetCards; the zero value lists every card.
type Filter struct {
	CtID        string
	SlotID      int // 0: any slot
	CardType    CardType
	MandantWide bool
}

// CardTerminal is one entry of GetCardTerminals.
type CardTerminal struct {
	CtID         string
	Name         string
	WorkplaceIDs []string
	MacAddress   string
	IPv4Address  string
	IPv6Address  string
	Slots        int
	Physical     bool
	Connected    bool
}

// PinStatus is the answer of GetPinStatus.
type PinStatus struct {
	State     PinState
	LeftTries int // -1 when the Konnektor did not say
}

// PinResponse is the answer of VerifyPin, ChangePin and UnblockPin.
type PinResponse struct {
	Status    Status
	Result    PinResult
	LeftTries int // -1 when the Konnektor did not say
}

// Document is one document to sign in a SignDocument batch.
type Document struct {
	RequestID string // SignRequest@RequestID; generated when empty
	ID        string // Document@ID; optional
	ShortText string // shown at the terminal, at most 30 characters
	MimeType  string // Base64Data@MimeType; "text/plain; charset=utf-8" when empty
	Content   []byte
	Detached  bool // CAdES detached (IncludeEContent false) instead of enveloping
}

// Signature is one SignResponse of a SignDocument batch.
type Signature struct {
	RequestID  string
	DocumentID string
	Status     Status
	Type       string // Base64Signature@Type, e.g. urn:ietf:rfc:5652
	Value      []byte // the CMS signature (enveloping or detached)
}

// HighLevelResult values of VerifyDocument.
const (
	Valid        = "VALID"
	Inconclusive = "INCONCLUSIVE"
	Invalid      = "INVALID"
)

// Verification is the answer of VerifyDocument.
type Verification struct {
	Status          Status
	HighLevelResult string // VALID, INCONCLUSIVE or INVALID
	TimestampType   string // e.g. SIGNATURE_EMBEDDED_TIMESTAMP
	Timestamp       time.Time
	// From the verification report, when the Konnektor returned one:
	SigningTime time.Time
	ResultMajor string
	ResultMinor string
	Signer      string // subject of the signer certificate
}

// Signature modes.
const (
	ModePIN     = "PIN"
	ModeComfort = "COMFORT"
)

// Komfortsignatur states (ComfortSignatureStatus).
const (
	ComfortEnabled  = "ENABLED"
	ComfortDisabled = "DISABLED"
)

// SignatureMode is the answer of GetSignatureMode.
type SignatureMode struct {
	ComfortSignatureStatus string        // ENABLED or DISABLED (in the Konnektor's configuration)
	ComfortSignatureMax    int           // signatures per activation
	ComfortSignatureTimer  time.Duration // lifetime of an activation
	// Session describes the card session of the calling UserId, when there is one.
	Session *SessionInfo
}

// SessionInfo is the signature mode of one HBA card session (card + UserId).
type SessionInfo struct {
	Mode           string // PIN or COMFORT
	CountRemaining int
	TimeRemaining  time.Duration
}

// Certificate references of ReadCardCertificate.
const (
	CertAUT = "C.AUT"
	CertENC = "C.ENC"
	CertSIG = "C.SIG"
	CertQES = "C.QES"
)

// Crypt values (key family) of ReadCardCertificate and SignDocument.
const (
	CryptECC = "ECC"
	CryptRSA = "RSA"
)

// Fault is a SOAP fault of the Konnektor, or the Error inside a WARNING/ERROR status. It
// carries the gematik error codes (tel/error/v2.0). Use errors.As to get it from any error
// of Client.
type Fault struct {
	HTTPStatus  int    // 0 inside a Status
	FaultCode   string // soap faultcode, e.g. soap:Server
	FaultString string
	MessageID   string
	Timestamp   time.Time
	Traces      []Trace
}

// Trace is one Trace of a gematik Error.
type Trace struct {
	EventID      string
	Instance     string
	LogReference string
	CompType     string
	Code         int
	Severity     string // Info, Warning, Error, Fatal
	ErrorType    string // Technical, Security, Infrastructure, Business, Other
	ErrorText    string
	Detail       string
}

// Code is the code of the first trace, or 0.
func (f *Fault) Code() int {
	if f == nil || len(f.Traces) == 0 {
		return 0
	}
	return f.Traces[0].Code
}

func (f *Fault) Error() string {
	var b strings.Builder
	b.WriteString("konnektor: ")
	if len(f.Traces) == 0 {
		b.WriteString("fault: ")
		b.WriteString(f.FaultString)
		return b.String()
	}
	for i, t := range f.Traces {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "error %d", t.Code)
		if t.ErrorText != "" {
			fmt.Fprintf(&b, " (%s)", t.ErrorText)
		}
		if t.Detail != "" {
			fmt.Fprintf(&b, ": %s", t.Detail)
		}
	}
	return b.String()
}

// FaultCode returns the gematik code of the first trace of the Fault in err's chain, or 0.
func FaultCode(err error) int {
	var f *Fault
	if errors.As(err, &f) {
		return f.Code()
	}
	return 0
}

// Konnektor error codes (gemSpec_Kon). The codes marked "documented" appear in gemSpec_Kon
// tables quoted by ere-ps-app; the others are this simulator's choice because the complete
// code table was not available (see ti.md §8).
const (
	CodeSyntax           = 4000 // documented: Syntaxfehler
	CodeInternal         = 4001 // documented: Interner Fehler
	CodePinTimeout       = 4043 // documented: Timeout bei der PIN-Eingabe (Warning)
	CodeUserCancelled    = 4049 // documented: Abbruch durch den Benutzer
	CodeWrongCardType    = 4051 // Karte ist nicht vom erwarteten Typ (RequestCard's code)
	CodeResourceInUse    = 4060 // documented: Ressource belegt
	CodePinBlocked       = 4063 // documented: PIN bereits gesperrt (BLOCKED)
	CodeTransportPin     = 4065 // documented: PIN ist transportgeschützt, Änderung erforderlich (Warning)
	CodeInvalidPinRef    = 4072 // documented: Ungültige PIN-Referenz PinRef
	CodeAccessDenied     = 4085 // documented: Zugriffsbedingungen nicht erfüllt
	CodeInvalidHandle    = 4101 // Kartenhandle ungültig
	CodeBadDocument      = 4110 // documented: ungültiges Dokumentformat
	CodeBadSignatureType = 4111 // documented: ungültiger Signaturtyp oder Signaturvariante
	CodeNoSignatureCard  = 4126 // documented: Kartentyp nicht zulässig für Signatur
	CodeNoCertificate    = 4149 // Zertifikat auf der Karte nicht vorhanden (simulator's choice)
	CodeComfortDisabled  = 4270 // Komfortsignatur nicht freigeschaltet (simulator's choice)
	CodeComfortCount     = 4271 // Komfortsignatur-Zähler hat SAK_COMFORT_SIGNATURE_MAX erreicht (simulator's choice)
	CodeComfortTimer     = 4272 // Komfortsignatur-Zeitraum abgelaufen (simulator's choice)
)

// ParseXSDuration reads an xs:duration without years and months (PnDTnHnMnS), as the
// Konnektor uses for ComfortSignatureTimer and TimeRemaining.
func ParseXSDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if !strings.HasPrefix(s, "P") || len(s) < 2 {
		return 0, fmt.Errorf("konnektor: %q is not an xs:duration", s)
	}
	s = s[1:]
	var d time.Duration
	inTime := false
	num := ""
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9' || c == '.':
			num += string(c)
		case c == 'T':
			inTime = true
		default:
			if num == "" {
				return 0, fmt.Errorf("konnektor: xs:duration %q: missing number", s)
			}
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("konnektor: xs:duration %q: %w", s, err)
			}
			num = ""
			var unit time.Duration
			switch {
			case c == 'D' && !inTime:
				unit = 24 * time.Hour
			case c == 'H' && inTime:
				unit = time.Hour
			case c == 'M' && inTime:
				unit = time.Minute
			case c == 'S' && inTime:
				unit = time.Second
			default:
				return 0, fmt.Errorf("konnektor: xs:duration %q: unit %c not supported", s, c)
			}
			d += time.Duration(v * float64(unit))
		}
	}
	if num != "" {
		return 0, fmt.Errorf("konnektor: xs:duration %q: number without unit", s)
	}
	if neg {
		d = -d
	}
	return d, nil
}

// FormatXSDuration writes d as xs:duration (PTnHnMnS), whole seconds.
func FormatXSDuration(d time.Duration) string {
	if d < 0 {
		return "-" + FormatXSDuration(-d)
	}
	d = d.Truncate(time.Second)
	h := int64(d / time.Hour)
	m := int64(d % time.Hour / time.Minute)
	sec := int64(d % time.Minute / time.Second)
	var b strings.Builder
	b.WriteString("PT")
	if h > 0 {
		fmt.Fprintf(&b, "%dH", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dM", m)
	}
	if sec > 0 || (h == 0 && m == 0) {
		fmt.Fprintf(&b, "%dS", sec)
	}
	return b.String()
}
