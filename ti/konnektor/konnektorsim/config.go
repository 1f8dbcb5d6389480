package konnektorsim

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/simpki"
	"github.com/redclone/red/ti/wire"
)

//go:embed default.json
var defaultConfig []byte

// Config describes the simulated Konnektor: its card terminals and the cards inserted in
// them. It is read from JSON (see default.json for a complete example).
type Config struct {
	ComfortSignature ComfortConfig     `json:"comfortSignature"`
	Pruefziffer      PruefzifferConfig `json:"pruefziffer"`
	Terminals        []TerminalConfig  `json:"terminals"`
	Cards            []CardConfig      `json:"cards"`

	// Clock returns the current time; nil means time.Now. Tests inject it.
	Clock func() time.Time `json:"-"`
}

// ComfortConfig configures the Komfortsignatur (SAK_COMFORT_SIGNATURE*).
type ComfortConfig struct {
	Disabled bool   `json:"disabled,omitempty"` // Komfortsignatur not allowed
	Max      int    `json:"max,omitempty"`      // signatures per activation; default 250
	Timer    string `json:"timer,omitempty"`    // lifetime of an activation (Go duration); default 24h
}

// PruefzifferConfig is the VSDM key the simulated Prüfziffer (PZ) of the Prüfungsnachweis is
// computed with: PZ = base64(KVNR ‖ unix time ‖ "U" ‖ kid ‖ first 24 bytes of
// HMAC-SHA256(key, the 23 characters before)). An E-Rezept-Fachdienst simulator that knows
// the key can check it.
type PruefzifferConfig struct {
	HMACKey string `json:"hmacKey"` // hex
	KID     string `json:"kid"`     // two characters
}

// TerminalConfig is one card terminal.
type TerminalConfig struct {
	CtID         string   `json:"ctId"`
	Name         string   `json:"name"`
	IPAddress    string   `json:"ipAddress,omitempty"`
	MacAddress   string   `json:"macAddress,omitempty"`
	Slots        int      `json:"slots"`
	WorkplaceIDs []string `json:"workplaceIds,omitempty"`
	Disconnected bool     `json:"disconnected,omitempty"`
}

// CardConfig is one inserted card. Certificates (C.AUT, C.ENC and C.QES for an HBA, C.SIG for
// an SMC-B) are issued by the simulator PKI from these details.
type CardConfig struct {
	Handle     string             `json:"handle"`
	Aliases    []string           `json:"aliases,omitempty"` // further handles that address the card (e.g. those of vendor samples)
	Type       konnektor.CardType `json:"type"`              // HBA, SMC-B or EGK
	CtID       string             `json:"ctId"`
	Slot       int                `json:"slot"`
	ICCSN      string             `json:"iccsn"` // 20 digits
	HolderName string             `json:"holderName"`
	InsertTime *time.Time         `json:"insertTime,omitempty"` // default: when the simulator started

	Title        string      `json:"title,omitempty"`      // HBA holder
	GivenName    string      `json:"givenName,omitempty"`  // HBA holder
	FamilyName   string      `json:"familyName,omitempty"` // HBA holder
	LANR         string      `json:"lanr,omitempty"`       // HBA of a physician
	Organization string      `json:"organization,omitempty"`
	BSNR         string      `json:"bsnr,omitempty"` // SMC-B of a practice
	TelematikID  string      `json:"telematikId,omitempty"`
	Profession   *Profession `json:"profession,omitempty"` // default by type: Arzt, Betriebsstätte Arzt, Versicherter

	// PINs of the card by PinTyp: PIN.QES and PIN.CH (HBA), PIN.SMC (SMC-B), PIN.CH (eGK).
	PINs map[konnektor.PinType]PinConfig `json:"pins"`

	Insured *InsuredConfig `json:"insured,omitempty"` // eGK only
}

// Profession is the profession entry of the certificates' admission extension.
type Profession struct {
	Item string `json:"item"`
	OID  string `json:"oid"`
}

// PinConfig is the initial state of one PIN. After the first start the state lives in the
// simulator's state directory; changing the configuration then has no effect on it.
type PinConfig struct {
	PIN          string `json:"pin"`                    // the personal PIN (6–8 digits) the simulated holder types
	PUK          string `json:"puk"`                    // 8 digits
	TransportPIN string `json:"transportPin,omitempty"` // set: the PIN starts as TRANSPORT_PIN with this value
	Verified     bool   `json:"verified,omitempty"`     // starts VERIFIED (an SMC-B unlocked at installation)
}

// InsuredConfig is what the eGK's VSD hold.
type InsuredConfig struct {
	Personal  konnektor.PersonalData   `json:"personal"`
	Insurance konnektor.InsuranceData  `json:"insurance"`
	Protected *konnektor.ProtectedData `json:"protected,omitempty"`
	// PruefungsnachweisResult is E of the Prüfungsnachweis after an online check (1–6,
	// default 2: no update needed).
	PruefungsnachweisResult int `json:"pruefungsnachweisResult,omitempty"`
}

// DefaultConfig returns the built-in configuration: an HBA of a physician (with LANR), the
// practice's SMC-B, a pharmacy's SMC-B and one eGK of a fictional insured person, in three
// terminals. Its handles include those used in gematik's sample requests, so the samples can be
// replayed against it.
func DefaultConfig() Config {
	cfg, err := ParseConfig(defaultConfig)
	if err != nil {
		panic("konnektorsim: default.json: " + err.Error())
	}
	return cfg
}

// LoadConfig reads a configuration file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("konnektorsim: %w", err)
	}
	return ParseConfig(data)
}

// ParseConfig reads a JSON configuration; unknown fields are an error.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("konnektorsim: configuration: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// pinTypesByCard lists the PINs each card type may have.
var pinTypesByCard = map[konnektor.CardType][]konnektor.PinType{
	konnektor.CardHBA:  {konnektor.PinCH, konnektor.PinQES},
	konnektor.CardSMCB: {konnektor.PinSMC},
	konnektor.CardEGK:  {konnektor.PinCH},
}

// Validate checks the configuration and reports every problem at once.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if cfg.ComfortSignature.Max < 0 || cfg.ComfortSignature.Max > 250 {
		bad("comfortSignature.max %d: must be 1..250", cfg.ComfortSignature.Max)
	}
	if cfg.ComfortSignature.Timer != "" {
		if d, err := time.ParseDuration(cfg.ComfortSignature.Timer); err != nil || d <= 0 {
			bad("comfortSignature.timer %q: not a positive Go duration", cfg.ComfortSignature.Timer)
		}
	}
	if k := cfg.Pruefziffer.HMACKey; k != "" {
		if b, err := hex.DecodeString(k); err != nil || len(b) < 16 {
			bad("pruefziffer.hmacKey: at least 16 bytes in hex")
		}
	}
	if kid := cfg.Pruefziffer.KID; kid != "" && len(kid) != 2 {
		bad("pruefziffer.kid %q: two characters", kid)
	}
	terminals := map[string]TerminalConfig{}
	for i, t := range cfg.Terminals {
		switch {
		case t.CtID == "" || len(t.CtID) > 64:
			bad("terminals[%d]: ctId must have 1..64 characters", i)
		case terminals[t.CtID].CtID != "":
			bad("terminals[%d]: ctId %q twice", i, t.CtID)
		}
		if t.Slots < 1 {
			bad("terminal %q: slots must be at least 1", t.CtID)
		}
		terminals[t.CtID] = t
	}
	handles := map[string]bool{}
	slots := map[string]bool{}
	iccsns := map[string]bool{}
	for i, c := range cfg.Cards {
		name := fmt.Sprintf("cards[%d] (%s)", i, c.Handle)
		for _, h := range append([]string{c.Handle}, c.Aliases...) {
			if strings.TrimSpace(h) == "" || len(h) > 128 {
				bad("%s: handles must have 1..128 characters", name)
			} else if handles[h] {
				bad("%s: handle %q used twice", name, h)
			}
			handles[h] = true
		}
		allowed, ok := pinTypesByCard[c.Type]
		if !ok {
			bad("%s: type %q: the simulator has HBA, SMC-B and EGK", name, c.Type)
		}
		t, ok := terminals[c.CtID]
		if !ok {
			bad("%s: terminal %q not configured", name, c.CtID)
		} else if c.Slot < 1 || c.Slot > t.Slots {
			bad("%s: slot %d outside 1..%d", name, c.Slot, t.Slots)
		}
		key := fmt.Sprintf("%s/%d", c.CtID, c.Slot)
		if slots[key] {
			bad("%s: slot %d of %s holds another card", name, c.Slot, c.CtID)
		}
		slots[key] = true
		if len(c.ICCSN) != 20 || !digits(c.ICCSN) {
			bad("%s: iccsn must be 20 digits", name)
		} else if iccsns[c.ICCSN] {
			bad("%s: iccsn %s twice", name, c.ICCSN)
		}
		iccsns[c.ICCSN] = true
		if c.HolderName == "" {
			bad("%s: holderName missing", name)
		}
		if c.LANR != "" {
			if err := ident.LANR(c.LANR); err != nil {
				bad("%s: lanr: %v", name, err)
			}
		}
		if c.BSNR != "" {
			if err := ident.BSNR(c.BSNR); err != nil {
				bad("%s: bsnr: %v", name, err)
			}
		}
		if c.TelematikID != "" && !printable(c.TelematikID) {
			bad("%s: telematikId may hold letters, digits, space and '()+,-./:=? only", name)
		}
		if len(c.PINs) == 0 {
			bad("%s: no pins", name)
		}
		for pt, p := range c.PINs {
			if !contains(allowed, pt) {
				bad("%s: %s is not a PIN of a %s", name, pt, c.Type)
			}
			if !validPIN(p.PIN) {
				bad("%s: %s: pin must be 6..8 digits", name, pt)
			}
			if len(p.PUK) != 8 || !digits(p.PUK) {
				bad("%s: %s: puk must be 8 digits", name, pt)
			}
			if p.TransportPIN != "" && !validPIN(p.TransportPIN) {
				bad("%s: %s: transportPin must be 6..8 digits", name, pt)
			}
			if p.TransportPIN != "" && p.Verified {
				bad("%s: %s: a transport PIN cannot start verified", name, pt)
			}
		}
		if c.Type == konnektor.CardEGK {
			if c.Insured == nil {
				bad("%s: an eGK needs insured data", name)
				continue
			}
			if err := validateInsured(*c.Insured); err != nil {
				bad("%s: %v", name, err)
			}
		} else if c.Insured != nil {
			bad("%s: only an eGK has insured data", name)
		}
	}
	return errors.Join(errs...)
}

func validateInsured(in InsuredConfig) error {
	var errs []error
	p := in.Personal
	if err := ident.KVNR(p.KVNR); err != nil {
		errs = append(errs, fmt.Errorf("insured.personal.kvnr: %w", err))
	}
	if _, err := time.Parse("20060102", p.BirthDate); err != nil {
		errs = append(errs, fmt.Errorf("insured.personal.birthDate %q: YYYYMMDD", p.BirthDate))
	}
	if p.GivenName == "" || p.FamilyName == "" {
		errs = append(errs, errors.New("insured.personal: givenName and familyName are required"))
	}
	if !contains([]string{"M", "W", "D", "X"}, p.Sex) {
		errs = append(errs, fmt.Errorf("insured.personal.sex %q: M, W, D or X", p.Sex))
	}
	if p.City == "" {
		errs = append(errs, errors.New("insured.personal.city is required"))
	}
	ins := in.Insurance
	if _, err := time.Parse("20060102", ins.CoverageStart); err != nil {
		errs = append(errs, fmt.Errorf("insured.insurance.coverageStart %q: YYYYMMDD", ins.CoverageStart))
	}
	if err := ident.IK(ins.PayerIK); err != nil {
		errs = append(errs, fmt.Errorf("insured.insurance.payerIk: %w", err))
	}
	if ins.PayerName == "" {
		errs = append(errs, errors.New("insured.insurance.payerName is required"))
	}
	if !contains([]string{"1", "3", "5"}, ins.InsuredType) {
		errs = append(errs, fmt.Errorf("insured.insurance.insuredType %q: 1, 3 or 5", ins.InsuredType))
	}
	if r := in.PruefungsnachweisResult; r < 0 || r > 6 {
		errs = append(errs, fmt.Errorf("insured.pruefungsnachweisResult %d: 1..6", r))
	}
	// Everything goes to the card as ISO-8859-15.
	for _, s := range []string{p.GivenName, p.FamilyName, p.Title, p.Prefix, p.NameSuffix, p.Street, p.HouseNumber, p.City, p.AddressSupplement, ins.PayerName, ins.BillingName} {
		if _, err := wire.EncodeLatin9(s); err != nil {
			errs = append(errs, fmt.Errorf("insured: %q: %w", s, err))
		}
	}
	return errors.Join(errs...)
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func validPIN(s string) bool { return len(s) >= 6 && len(s) <= 8 && digits(s) }

func printable(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune(" '()+,-./:=?", c)) {
			return false
		}
	}
	return true
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// comfortLimits returns the effective Komfortsignatur limits.
func (cfg Config) comfortLimits() (max int, timer time.Duration) {
	max = cfg.ComfortSignature.Max
	if max == 0 {
		max = 250
	}
	timer = 24 * time.Hour
	if cfg.ComfortSignature.Timer != "" {
		timer, _ = time.ParseDuration(cfg.ComfortSignature.Timer)
	}
	return max, timer
}

// profession returns the admission profession of a card.
func (c CardConfig) profession() Profession {
	if c.Profession != nil {
		return *c.Profession
	}
	switch c.Type {
	case konnektor.CardHBA:
		return Profession{Item: "Arzt", OID: simpki.ProfessionArzt}
	case konnektor.CardSMCB:
		return Profession{Item: "Betriebsstätte Arzt", OID: simpki.ProfessionBetriebsstaetteArzt}
	default:
		return Profession{Item: "Versicherter", OID: simpki.ProfessionVersicherter}
	}
}
