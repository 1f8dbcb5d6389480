package kbv

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
)

// Practitioner: KBV_PR_AW_Behandelnder (doctor, psychotherapist), KBV_PR_AW_Mitarbeiter (practice
// staff, recognised by its qualification code KBV_CS_AW_Ressourcentyp#Mitarbeiter) and, by resource
// type, the e-prescription's KBV_PR_FOR_Practitioner.
//
// The profile tables check these profiles' structure: the identifier and name slices, the
// qualification types of the e-prescription and which number each asks for (the invariants of
// KBV_PR_FOR_Practitioner), the professional title and its length. validate checks every
// Practitioner against them: against the profile it names or, naming none, against
// KBV_PR_AW_Behandelnder or KBV_PR_AW_Mitarbeiter. The rules here add what the profiles cannot say:
// the identifier numbers' format and check digit, the German name and address parts, plausibility.

func init() { register("Practitioner", practitioner) }

const (
	practitionerNSASV       = "https://fhir.kbv.de/NamingSystem/KBV_NS_FOR_Fachgruppennummer_ASV"
	practitionerCSRessource = "https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Ressourcentyp"
)

// practitionerIDKinds are the identifiers with a number to check: LANR, ZANR, EFN and
// Telematik-ID (which one, by the identifier's type code, else by its system).
var practitionerIDKinds = []personIDKind{
	{name: "LANR", typeCode: "LANR", systems: personLANRSystems, check: ident.LANR},
	{name: "ZANR", typeCode: "ZANR", systems: personZANRSystems, check: ident.ZANR},
	{name: "EFN", typeCode: "DN", systems: personEFNSystems, check: practitionerEFN},
	{name: "Telematik-ID", typeCode: "PRN", systems: personTISystems},
}

var (
	// practitionerNineDigits is what the invariants lanr-1 and zanr-2 of KBV_PR_AW_Behandelnder's
	// LANR and ZANR ask of the value (warnings): nine digits in a row, with more around them allowed.
	practitionerNineDigits = regexp.MustCompile(`[0-9]{9}`)
	// An ASV-Fachgruppennummer is nine digits.
	practitionerASV = regexp.MustCompile(`^[0-9]{9}$`)
)

var (
	errPractitionerEFN = fmt.Errorf("%w: an EFN (einheitliche Fortbildungsnummer) is fifteen digits", ident.ErrFormat)
	errPractitionerASV = fmt.Errorf("%w: an ASV-Fachgruppennummer is nine digits", ident.ErrFormat)
)

// practitionerEFN checks the format of an EFN (no check-digit rule is used here).
func practitionerEFN(s string) error {
	if !personEFN.MatchString(s) {
		return errPractitionerEFN
	}
	return nil
}

func practitioner(c *Cursor) {
	if practitionerIsStaff(c) {
		practitionerStaff(c)
		return
	}
	for _, id := range c.All("identifier") {
		practitionerNumber(id)
	}
	// The ASV-Fachgruppennummer of an e-prescription (KBV_PR_FOR_Practitioner), a number the
	// profile states no format for.
	for _, q := range c.All("qualification") {
		for _, cd := range q.One("code").All("coding") {
			v := cd.One("code")
			if cd.One("system").Value() == practitionerNSASV && v.Exists() && !practitionerASV.MatchString(v.Value()) {
				v.Number(errPractitionerASV)
			}
		}
	}
	personNames(c, c.All("name"), true)
	for _, a := range c.All("address") {
		personAddress(a)
	}
	for _, t := range c.All("telecom") {
		personTelecom(t)
	}
	personGender(c.One("gender"))
}

// practitionerNumber checks the number of a LANR, ZANR, EFN or Telematik-ID (format and check
// digit; any other identifier by its system). In an AWS practitioner the tables checked, a LANR or
// ZANR without nine digits in a row is left to the profile's invariant, which says so already.
func practitionerNumber(id *Cursor) {
	val := id.One("value")
	v := val.Value()
	if strings.TrimSpace(v) == "" {
		return
	}
	kind, byType := practitionerIDKind(id)
	var err error
	switch {
	case kind == nil || kind.check == nil:
		err = ident.Check(id.One("system").Value(), v)
	default:
		err = kind.check(v)
	}
	if err == nil {
		return
	}
	if byType && (kind.name == "LANR" || kind.name == "ZANR") && errors.Is(err, ident.ErrFormat) &&
		id.rep.profiled && !id.rep.prescription && !practitionerNineDigits.MatchString(v) {
		return
	}
	val.Number(err)
}

// practitionerIDKind recognises an identifier by its type code or, without a known one, by its
// system; byType says it was the type code (by which the profiles slice the identifiers).
func practitionerIDKind(id *Cursor) (kind *personIDKind, byType bool) {
	if typ := id.Element().SelectElement("type"); typ != nil {
		for _, cd := range typ.SelectElements("coding") {
			code := fhir.ChildValue(cd, "code")
			for i := range practitionerIDKinds {
				if practitionerIDKinds[i].typeCode == code {
					return &practitionerIDKinds[i], true
				}
			}
		}
	}
	sys := fhir.ChildValue(id.Element(), "system")
	for i := range practitionerIDKinds {
		if slices.Contains(practitionerIDKinds[i].systems, sys) {
			return &practitionerIDKinds[i], false
		}
	}
	return nil, false
}

// practitionerIsStaff reports whether the practitioner is practice staff (KBV_PR_AW_Mitarbeiter):
// it claims that profile (or it was chosen for it), or, claiming none, has the qualification code
// KBV_CS_AW_Ressourcentyp#Mitarbeiter.
func practitionerIsStaff(c *Cursor) bool {
	if name, foreign := pickProfile(c, "KBV_PR_AW_Behandelnder", "KBV_PR_AW_Mitarbeiter"); name != "" || foreign {
		return name == "KBV_PR_AW_Mitarbeiter"
	}
	for _, q := range c.All("qualification") {
		for _, cd := range q.One("code").All("coding") {
			if cd.One("system").Value() == practitionerCSRessource && cd.One("code").Value() == "Mitarbeiter" {
				return true
			}
		}
	}
	return false
}

// practitionerStaff checks practice staff (KBV_PR_AW_Mitarbeiter) beyond the profile: the
// identifier's number by its system, the name, address and contact parts.
func practitionerStaff(c *Cursor) {
	for _, id := range c.All("identifier") {
		id.One("value").NotEmpty()
		id.Identifier()
	}
	for _, n := range c.All("name") {
		personName(n, false)
	}
	for _, a := range c.All("address") {
		personAddress(a)
	}
	for _, t := range c.All("telecom") {
		personTelecom(t)
	}
	personGender(c.One("gender"))
}
