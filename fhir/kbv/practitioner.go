package kbv

import (
	"fmt"
	"regexp"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
)

// Practitioner: KBV_PR_AW_Behandelnder (doctor, psychotherapist; by resource type also the
// KBV_PR_FOR_Practitioner of the e-prescription, whose qualification types and identifiers are
// accepted too) and KBV_PR_AW_Mitarbeiter (practice staff, recognised by its qualification
// code KBV_CS_AW_Ressourcentyp#Mitarbeiter).

func init() { register("Practitioner", practitioner) }

const (
	practitionerCSFachgruppe  = "https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_BAR2_ARZTNRFACHGRUPPE"
	practitionerCSQualType    = "https://fhir.kbv.de/CodeSystem/KBV_CS_FOR_Qualification_Type"
	practitionerCSBeruf       = "https://fhir.kbv.de/CodeSystem/KBV_CS_FOR_Berufsbezeichnung"
	practitionerNSASV         = "https://fhir.kbv.de/NamingSystem/KBV_NS_FOR_Fachgruppennummer_ASV"
	practitionerCSRessource   = "https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Ressourcentyp"
	practitionerMaxBerufsText = 100
)

var (
	// practitionerIDKinds: AWS slices ANR and EFN, plus the ZANR and Telematik-ID the
	// e-prescription profile allows.
	practitionerIDKinds = []personIDKind{
		{name: "LANR", typeSystem: personV2IDType, typeCode: "LANR", systems: personLANRSystems, check: ident.LANR},
		{name: "ZANR", typeSystem: personDeIDType, typeCode: "ZANR", systems: personZANRSystems, check: ident.ZANR},
		{name: "EFN", typeSystem: personV2IDType, typeCode: "DN", systems: personEFNSystems, check: practitionerEFN},
		{name: "Telematik-ID", typeSystem: personV2IDType, typeCode: "PRN", systems: personTISystems},
	}

	// KBV_CS_FOR_Qualification_Type: 00 Arzt, 01 Zahnarzt, 02 Hebamme, 03 Arzt in Weiterbildung,
	// 04 Arzt als Vertreter.
	practitionerQualTypes = codes("00", "01", "02", "03", "04")

	// KBV_CS_SFHIR_BAR2_ARZTNRFACHGRUPPE covers every two-digit code 00–99 (digits 8 and 9 of the LANR).
	practitionerFachgruppe = regexp.MustCompile(`^[0-9]{2}$`)
	// An ASV-Fachgruppennummer is nine digits.
	practitionerASV = regexp.MustCompile(`^[0-9]{9}$`)
)

var errPractitionerEFN = fmt.Errorf("%w: an EFN (einheitliche Fortbildungsnummer) is fifteen digits", ident.ErrFormat)

// practitionerEFN checks the format of an EFN (no check-digit rule is used here).
func practitionerEFN(s string) error {
	if !personEFN.MatchString(s) {
		return errPractitionerEFN
	}
	return nil
}

// A Practitioner checked against KBV_PR_AW_Behandelnder or _Mitarbeiter by the profile tables
// (c.rep.profiled) gets here what the tables do not cover: the identifier and name slices of KBV
// Basis (not among the definitions read), the German name and address parts, and plausibility.
// Any other Practitioner (the e-prescription's KBV_PR_FOR_Practitioner, a profile the tables do
// not hold) gets all rules here, until the profile tables cover those profiles.
func practitioner(c *Cursor) {
	aws := c.rep.profiled
	if practitionerIsStaff(c) {
		practitionerStaff(c, aws)
		return
	}
	if !aws {
		c.Forbid("birthDate", "photo", "communication")
	}

	// Qualifications first: the e-prescription's qualification type decides which number is
	// required (KBV_PR_FOR_Practitioner).
	qualType, asv := "", false
	if !aws {
		for _, q := range c.All("qualification") {
			t, a := practitionerQualification(q)
			if t != "" {
				qualType = t
			}
			asv = asv || a
		}
	}

	ids := c.All("identifier")
	kinds := personIdentifiers(ids, practitionerIDKinds, true)
	lanr, zanr := -1, -1
	for i, k := range kinds {
		if k == nil {
			continue
		}
		switch k.name {
		case "LANR":
			if lanr >= 0 {
				ids[i].Errorf(fhir.CodeStructure, "a practitioner has only one LANR")
			} else {
				lanr = i
			}
		case "ZANR":
			if zanr >= 0 {
				ids[i].Errorf(fhir.CodeStructure, "a practitioner has only one ZANR")
			} else {
				zanr = i
			}
		}
	}
	if lanr >= 0 && zanr >= 0 {
		ids[max(lanr, zanr)].Errorf(fhir.CodeInvariant, "a practitioner has either a LANR (doctor) or a ZANR (dentist), not both")
	}
	switch qualType {
	case "00", "03", "04":
		if lanr < 0 && !asv {
			personMissing(c, "identifier").Errorf(fhir.CodeInvariant, "a doctor (qualification type %s) needs a LANR", qualType)
		}
	case "01":
		if zanr < 0 {
			personMissing(c, "identifier").Errorf(fhir.CodeInvariant, "a dentist (qualification type 01) needs a ZANR")
		}
	case "02":
		if lanr >= 0 || zanr >= 0 {
			ids[max(lanr, zanr)].Errorf(fhir.CodeInvariant, "a midwife (qualification type 02) has neither LANR nor ZANR")
		}
	}
	if len(ids) == 0 && qualType != "02" && !aws {
		personMissing(c, "identifier").Errorf(fhir.CodeRequired, "a practitioner needs an identifier (the LANR, for a dentist the ZANR)")
	}

	names := c.All("name")
	switch {
	case len(names) == 0:
		if !aws {
			personMissing(c, "name").Errorf(fhir.CodeRequired, "the practitioner's name is required")
		}
	case len(names) > 2 && !aws:
		personMissing(c, "name").Errorf(fhir.CodeStructure, "a practitioner has one name and at most a birth name, found %d names", len(names))
	}
	personNames(c, names, true)
	// The name slices of KBV_PR_AW_Behandelnder exclude a period (until the profile tables cover
	// their discriminator, stated in KBV Basis).
	for _, n := range names {
		n.Forbid("period")
	}
	if !aws {
		c.Max("address", 1)
	}
	for _, a := range c.All("address") {
		personAddress(a)
	}
	for _, t := range c.All("telecom") {
		if !aws {
			t.Forbid("use", "rank", "period")
		}
		personTelecom(t)
	}
	personGender(c.One("gender"))
}

// practitionerQualification checks one qualification and returns its KBV qualification type
// (00–04, "" if it is none) and whether it is an ASV-Fachgruppennummer.
func practitionerQualification(q *Cursor) (qualType string, asv bool) {
	q.Forbid("period", "issuer")
	code := q.One("code")
	if !code.Exists() {
		code.Errorf(fhir.CodeRequired, "a qualification needs its code")
		return "", false
	}
	cds := code.All("coding")
	if len(cds) == 0 {
		personMissing(code, "coding").Errorf(fhir.CodeRequired, "a qualification needs a coding (Fachgruppe of %s)", practitionerCSFachgruppe)
		return "", false
	}
	code.Max("coding", 1)
	cd := cds[0]
	cd.Require("system", "code")
	sys, v := cd.One("system"), cd.One("code")
	if !sys.Exists() || !v.Exists() {
		return "", false
	}
	switch sys.Value() {
	case practitionerCSFachgruppe:
		if !practitionerFachgruppe.MatchString(v.Value()) {
			v.Errorf(fhir.CodeValue, "a Fachgruppe of %s is two digits, not %q", practitionerCSFachgruppe, v.Value())
		}
	case practitionerCSQualType:
		if !practitionerQualTypes[v.Value()] {
			v.Errorf(fhir.CodeValue, "code %q is not in %s", v.Value(), practitionerCSQualType)
			return "", false
		}
		return v.Value(), false
	case practitionerCSBeruf:
		if v.Value() != "Berufsbezeichnung" {
			v.Errorf(fhir.CodeValue, "code %q is not in %s", v.Value(), practitionerCSBeruf)
		}
		text := code.One("text")
		if !text.Exists() {
			text.Errorf(fhir.CodeRequired, "the professional title (Berufsbezeichnung) goes into the text")
		} else {
			text.NotEmpty()
			text.MaxLen(practitionerMaxBerufsText)
		}
	case practitionerNSASV:
		if !practitionerASV.MatchString(v.Value()) {
			v.Errorf(fhir.CodeValue, "an ASV-Fachgruppennummer is nine digits")
		}
		return "", true
	default:
		sys.Errorf(fhir.CodeValue, "a qualification is coded with %s (Fachgruppe) or the KBV qualification types", practitionerCSFachgruppe)
	}
	return "", false
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

// practitionerStaff checks KBV_PR_AW_Mitarbeiter: at most one identifier (value only), a name,
// exactly one qualification (the fixed Mitarbeiter code), no birth date, photo or language.
func practitionerStaff(c *Cursor, aws bool) {
	if !aws {
		c.Forbid("active", "birthDate", "photo", "communication")
		c.Max("identifier", 1)
	}
	for _, id := range c.All("identifier") {
		if !aws {
			id.Forbid("use", "type", "period", "assigner")
			id.Require("value")
		}
		id.One("value").NotEmpty()
		id.Identifier()
	}
	names := c.All("name")
	if len(names) == 0 && !aws {
		personMissing(c, "name").Errorf(fhir.CodeRequired, "the staff member's name is required")
	}
	if !aws {
		c.Max("name", 1)
	}
	for _, n := range names {
		personName(n, false)
	}
	if !aws {
		c.Max("address", 1)
	}
	for _, a := range c.All("address") {
		personAddress(a)
	}
	for _, t := range c.All("telecom") {
		if !aws {
			t.Forbid("use", "rank", "period")
		}
		personTelecom(t)
	}
	personGender(c.One("gender"))
	if !aws {
		c.Max("qualification", 1)
		for _, q := range c.All("qualification") {
			q.Forbid("identifier", "period", "issuer")
			code := q.One("code")
			code.Max("coding", 1)
			for _, cd := range code.All("coding") {
				cd.Coding(practitionerCSRessource, codes("Mitarbeiter"))
			}
		}
	}
}
