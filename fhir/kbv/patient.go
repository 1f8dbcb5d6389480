package kbv

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
)

// Patient: KBV_PR_AW_Patient (and, by resource type, KBV_PR_FOR_Patient of the e-prescription).
//
// This file also holds the helpers the person-like types share (Patient, Coverage, Practitioner,
// Organization, PractitionerRole): names, addresses, telecom, gender, identifiers by type and
// references. They are prefixed "person" so they do not collide with other types' helpers.

func init() { register("Patient", patient) }

// Code and identifier systems, extension URLs.
const (
	personV2IDType      = "http://terminology.hl7.org/CodeSystem/v2-0203"
	personDeIDType      = "http://fhir.de/CodeSystem/identifier-type-de-basis"
	personKBVIDType     = "https://fhir.kbv.de/CodeSystem/KBV_CS_Base_identifier_type"
	personGenderAmtlich = "http://fhir.de/CodeSystem/gender-amtlich-de"

	personExtOwnName      = "http://hl7.org/fhir/StructureDefinition/humanname-own-name"
	personExtOwnPrefix    = "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix"
	personExtNamenszusatz = "http://fhir.de/StructureDefinition/humanname-namenszusatz"
	personExtQualifier    = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier"
	personExtStreet       = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-streetName"
	personExtHouseNumber  = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-houseNumber"
	personExtLocator      = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-additionalLocator"
	personExtPostBox      = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-postBox"
	personExtGender       = "http://fhir.de/StructureDefinition/gender-amtlich-de"
	personExtAbsent       = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

	patientMaritalStatus = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
	patientNullFlavor    = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
	patientRelationship  = "http://terminology.hl7.org/CodeSystem/v2-0131"
)

// Identifier systems for the German numbers (current NamingSystem, legacy URL, OID form).
var (
	personKVNRSystems = []string{"http://fhir.de/sid/gkv/kvid-10", "http://fhir.de/NamingSystem/gkv/kvid-10", "http://fhir.de/sid/pkv/kvid-10", "urn:oid:1.2.276.0.76.4.8"}
	personKVKSystems  = []string{"http://fhir.de/sid/gkv/kvk-versichertennummer", "http://fhir.de/NamingSystem/gkv/kvk-versichertennummer"}
	personLANRSystems = []string{"https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR", "http://fhir.de/NamingSystem/kbv/lanr", "urn:oid:1.2.276.0.76.4.16"}
	personZANRSystems = []string{"http://fhir.de/sid/kzbv/zahnarztnummer", "http://fhir.de/NamingSystem/kzbv/zahnarztnummer"}
	personBSNRSystems = []string{"https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR", "http://fhir.de/NamingSystem/kbv/bsnr", "urn:oid:1.2.276.0.76.4.17"}
	personIKSystems   = []string{"http://fhir.de/sid/arge-ik/iknr", "http://fhir.de/NamingSystem/arge-ik/iknr", "urn:oid:1.2.276.0.76.4.5"}
	personKZVASystems = []string{"http://fhir.de/sid/kzbv/kzvabrechnungsnummer", "http://fhir.de/NamingSystem/kzbv/kzvabrechnungsnummer"}
	personKSNSystems  = []string{"http://fhir.de/sid/dkgev/standortnummer"}
	personTISystems   = []string{"https://gematik.de/fhir/sid/telematik-id"}
	personEFNSystems  = []string{"http://fhir.de/sid/bundesaerztekammer/efn", "http://fhir.de/NamingSystem/bundesaerztekammer/efn"}
)

// KBV text limits (KVDT field lengths). The KBV profiles state them for the parts of their name
// and address slices, where the tables report them (personScope.parts); elsewhere they are
// plausibility.
const (
	personMaxNachname     = 45
	personMaxNamenszusatz = 20
	personMaxVorsatzwort  = 20
	personMaxGiven        = 45
	personMaxPrefix       = 20
	personMaxStreet       = 46
	personMaxHouseNumber  = 9
	personMaxLocator      = 40
	personMaxPostBox      = 8
	personMaxCity         = 40
	personMaxPostalCode   = 10
	personMaxPhone        = 30
	personMaxEmail        = 256
)

var (
	// patientIDKinds are the identifiers a patient may carry (the AWS slices pid,
	// versichertenId_GKV, versichertennummer_pkv, reisepassnummer, versichertennummer_kvk).
	patientIDKinds = []personIDKind{
		// kvid-1 of identifier-kvid-10 (a warning), -for-laengeVersichertenId… of the
		// e-prescription (errors).
		{name: "KVNR", typeSystem: personDeIDType, typeCode: "KVZ10", systems: personKVNRSystems, check: ident.KVNR, formatByProfile: true},
		{name: "KVNR", typeSystem: personDeIDType, typeCode: "GKV", systems: personKVNRSystems, check: ident.KVNR, formatByProfile: true},
		{name: "PKV-Versichertennummer", typeSystem: personDeIDType, typeCode: "PKV"},
		{name: "Patientennummer", typeSystem: personV2IDType, typeCode: "MR"},
		{name: "Reisepassnummer", typeSystem: personV2IDType, typeCode: "PPN"},
		{name: "KVK-Versichertennummer", typeSystem: personKBVIDType, typeCode: "kvk", systems: personKVKSystems},
	}

	personGenders        = codes("male", "female", "other", "unknown")
	personGenderAmtlichD = codes("D", "X")
	personAddressTypes   = codes("both", "postal", "physical")
	personNameUses       = codes("official", "usual", "maiden")
	personTelecomSystems = codes("phone", "fax", "email", "pager", "url", "sms", "other")
	patientMarital       = codes("A", "D", "I", "L", "M", "C", "P", "T", "U", "S", "W")
	patientContactKinds  = codes("CP", "BP")

	personCountry   = regexp.MustCompile(`^[A-Z]{1,3}$`)
	personGermanPLZ = regexp.MustCompile(`^[0-9]{5}$`)
	personEmail     = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	personPhone     = regexp.MustCompile(`^\+?[0-9 ()/\-.]*[0-9][0-9 ()/\-.]*$`)
	personEFN       = regexp.MustCompile(`^[0-9]{15}$`)
)

// personMaxAge is how far back a birth date is still plausible.
const personMaxAge = 150

// A Patient the profile tables checked (c.rep.profiled: against KBV_PR_AW_Patient, or the
// e-prescription's KBV_PR_FOR_Patient) gets here what the profiles cannot say: the check digits of
// its numbers (and their format where the profile does not state it), plausible dates and
// lengths, consistency between elements, FHIR core rules the tables leave out, and the marital
// status's codes (its value set was not read). Findings the profile does not make are
// plausibility: warnings, errors in strict mode. A Patient the tables did not check (its
// meta.profile names a profile they do not hold) gets the rules of the KBV profiles here instead,
// as errors.
func patient(c *Cursor) {
	profiled := c.rep.profiled
	ids := c.All("identifier")
	if profiled {
		for _, id := range ids {
			patientNumber(id)
		}
	} else {
		// Each identifier of a known kind, at most one KVNR (the AWS slices pid,
		// versichertenId_GKV, versichertennummer_pkv, reisepassnummer, versichertennummer_kvk).
		if len(ids) == 0 {
			personMissing(c, "identifier").Errorf(fhir.CodeRequired, "a patient needs at least one identifier (KVNR, patient number, PKV number or passport number)")
		}
		kvnr := 0
		for i, k := range personIdentifiers(ids, patientIDKinds, true) {
			if k != nil && k.name == "KVNR" {
				kvnr++
				if kvnr > 1 {
					ids[i].Errorf(fhir.CodeStructure, "a patient has only one KVNR")
				}
			}
		}
	}

	// Names: closed slicing by use (official, usual, maiden), at most three, one per use.
	names := c.All("name")
	if profiled {
		patientNames(c, names)
	} else {
		switch {
		case len(names) == 0:
			personMissing(c, "name").Errorf(fhir.CodeRequired, "the patient's name is required")
		case len(names) > 3:
			personMissing(c, "name").Errorf(fhir.CodeStructure, "a patient has at most three names (official, usual and maiden name), found %d", len(names))
		}
		personNames(c, names, true)
	}

	// The profiles bind the differentiation of gender other and state pat-de-1 for the
	// patient's own gender.
	personGenderIn(c.One("gender"), personScope{profiled: profiled, kbv: profiled})
	patientBirthDate(c)

	if !profiled {
		// deceased only as a date-time (AWS closes the type slicing).
		c.Forbid("deceasedBoolean", "multipleBirthBoolean", "multipleBirthInteger", "managingOrganization", "link")
	}
	if dec := c.One("deceasedDateTime"); dec.Exists() {
		dec.NotFuture(false)
		v := dec.Value()
		if t, err := ParseDate(v); err == nil && isDateTime(v) {
			if b, ok := patientBirth(c); ok && !sameDayOrLater(t, b) {
				dec.Warnf(fhir.CodeInvariant, "the date of death lies before the date of birth")
			}
		}
	}

	for _, a := range c.All("address") {
		// The profiles slice the addresses by type: street address (both) and post box (postal).
		typ := a.One("type").Value()
		kbv := profiled && (typ == "both" || typ == "postal")
		personAddressIn(a, personScope{profiled: profiled, kbv: kbv, parts: kbv})
	}
	for _, t := range c.All("telecom") {
		personTelecom(t)
	}

	if ms := c.One("maritalStatus"); ms.Exists() {
		patientMaritalStatusCheck(ms, profiled)
	}
	for _, ct := range c.All("contact") {
		patientContact(ct, profiled)
	}
	for _, cm := range c.All("communication") {
		cm.Require("language") // FHIR core
		if !profiled {
			cm.Require("preferred")
			if lang := cm.One("language"); lang.Exists() {
				lang.Require("coding")
				lang.Max("coding", 1)
				for _, cd := range lang.All("coding") {
					cd.Require("system", "code")
				}
			}
		}
	}
	if !profiled {
		c.Max("generalPractitioner", 1)
	}
	for _, gp := range c.All("generalPractitioner") {
		switch {
		case gp.Count("reference") > 0:
			personReference(gp, "PractitionerRole", "Practitioner")
		case gp.Count("identifier") > 0:
			for _, id := range gp.All("identifier") {
				id.Identifier()
			}
		default:
			personScope{profiled: profiled}.rule(gp, fhir.CodeRequired, "the general practitioner needs a reference or a LANR")
		}
	}
}

// patientNumber checks the number of an identifier of a Patient the profile tables checked: the
// check digit, and the format where the profile does not state it. The tables report the rest:
// the identifier's kind (the closed slicing by type), its system, value and period.
func patientNumber(id *Cursor) {
	val := id.One("value")
	val.NotEmpty()
	v := val.Value()
	if strings.TrimSpace(v) == "" {
		return
	}
	k := personKind(id, patientIDKinds)
	check := func(v string) error { return ident.Check(id.One("system").Value(), v) }
	if k != nil && k.check != nil {
		check = k.check
	}
	if err := check(v); err != nil && !(k != nil && k.formatByProfile && errors.Is(err, ident.ErrFormat)) {
		val.Number(err)
	}
}

// patientNames checks the names of a Patient the profile tables checked. The profiles slice them
// by use (official; usual, the master data; maiden, the birth name) and state each slice's
// cardinalities and the academic title's qualifier, the official and birth name's KBV lengths
// too: the tables report those, and that a name of another use matches no slice.
func patientNames(c *Cursor, names []*Cursor) {
	official := false
	for _, n := range names {
		use := n.One("use").Value()
		official = official || use == "official"
		kbv := personNameUses[use]
		personNameIn(n, false, personScope{profiled: true, kbv: kbv, parts: kbv && use != "usual"})
	}
	// AWS allows a patient without official name (the e-prescription requires it: the tables
	// report that): plausibility.
	if len(names) > 0 && !official && !c.rep.prescription {
		personMissing(c, "name").Warnf(fhir.CodeInvariant, "one name should be the official name (use official)")
	}
}

// patientBirthDate checks birthDate: present (or marked unknown with data-absent-reason, as the
// AWS requirements catalogue asks and the profiles require; the tables report a missing one), a
// real date, and plausibly neither in the future nor more than 150 years ago.
func patientBirthDate(c *Cursor) {
	bd := c.One("birthDate")
	switch {
	case !bd.Exists():
		if !c.rep.profiled {
			bd.Errorf(fhir.CodeRequired, "the date of birth is required; if it is wholly unknown, mark it with the data-absent-reason extension")
		}
		return
	case bd.Element().SelectAttr("value") == nil:
		if len(bd.Extension(personExtAbsent)) == 0 && len(bd.Element().ChildElements()) > 0 { // empty: ele-1
			personScope{profiled: c.rep.profiled}.rule(bd, fhir.CodeRequired, "the date of birth needs a value or a data-absent-reason extension")
		}
		return
	}
	bd.NotFuture(true)
	if t, ok := patientBirth(c); ok && t.Before(c.Now().AddDate(-personMaxAge, 0, 0)) {
		bd.Warnf(fhir.CodeValue, "the date of birth lies more than %d years in the past", personMaxAge)
	}
}

// patientBirth is the patient's (earliest possible) birth instant, if well-formed.
func patientBirth(c *Cursor) (time.Time, bool) {
	v := c.One("birthDate").Value()
	if v == "" || !isDate(v) {
		return time.Time{}, false
	}
	t, err := ParseDate(v)
	return t, err == nil
}

// sameDayOrLater reports whether death t falls on birth b's calendar day or later (a death on the
// day of birth written as a date-time with an offset must not count as "before birth").
func sameDayOrLater(t, b time.Time) bool {
	y1, m1, d1 := t.Date()
	y2, m2, d2 := b.Date()
	return y1 > y2 || (y1 == y2 && (m1 > m2 || (m1 == m2 && d1 >= d2)))
}

// patientMaritalStatusCheck checks the marital status's code: the AWS profile binds it (required)
// to a value set the tables do not hold, so they do not check it.
func patientMaritalStatusCheck(ms *Cursor, profiled bool) {
	if !profiled {
		ms.Require("coding")
		ms.Max("coding", 1)
	}
	for _, cd := range ms.All("coding") {
		if !profiled {
			cd.Require("system", "code")
		}
		sys, code := cd.One("system"), cd.One("code")
		switch sys.Value() {
		case "":
		case patientMaritalStatus:
			if code.Exists() && !patientMarital[code.Value()] {
				code.Errorf(fhir.CodeValue, "the marital status is one of the codes of %s", patientMaritalStatus)
			}
		case patientNullFlavor:
			if code.Exists() && code.Value() != "UNK" {
				code.Errorf(fhir.CodeValue, "only the code UNK of %s may stand for an unknown marital status", patientNullFlavor)
			}
		default:
			sys.Errorf(fhir.CodeValue, "the marital status is coded with %s", patientMaritalStatus)
		}
	}
}

// patientContact checks a contact person: closed slicing by relationship (CP confidant, BP bill
// recipient), with name, telecom and address checked like the patient's own. The profiles give a
// contact's name, address and gender no KBV slices: only their types' rules (humanname-de-basis,
// address-de-basis, the extension gender-amtlich-de), which the tables check.
func patientContact(ct *Cursor, profiled bool) {
	if !profiled {
		ct.Forbid("period")
		rel := ct.All("relationship")
		if len(rel) == 0 {
			personMissing(ct, "relationship").Errorf(fhir.CodeRequired, "a contact needs its relationship: CP (confidant) or BP (bill recipient) of %s", patientRelationship)
		}
		if len(rel) > 1 {
			personMissing(ct, "relationship").Errorf(fhir.CodeStructure, "a contact has exactly one relationship, found %d", len(rel))
		}
		for _, r := range rel {
			r.Require("coding")
			r.Max("coding", 1)
			for _, cd := range r.All("coding") {
				cd.Coding(patientRelationship, patientContactKinds)
			}
		}
	}
	scope := personScope{profiled: profiled}
	if n := ct.One("name"); n.Exists() {
		personNameIn(n, false, scope)
	}
	for _, t := range ct.All("telecom") {
		personTelecom(t)
	}
	if a := ct.One("address"); a.Exists() {
		personAddressIn(a, scope)
	}
	personGenderIn(ct.One("gender"), scope)
	if org := ct.One("organization"); org.Exists() {
		personReference(org, "Organization")
	}
}

// personScope says how the hand-written rules check a name, address or gender: which of their
// rules the profile tables checked already, and how the rest counts. The zero value: every rule,
// as errors (what Practitioner, Organization and a Patient the tables did not check get).
type personScope struct {
	// profiled: the tables checked the resource, and the element against its type's profile
	// (humanname-de-basis, address-de-basis, the extension gender-amtlich-de): what they do not
	// report is plausibility, a warning.
	profiled bool
	// kbv: they checked the element against a slice of the KBV profiles (a patient's name by
	// use, address by type, own gender), which states its cardinalities, fixed codes and the
	// academic title's qualifier: the hand-written rules leave those to them.
	kbv bool
	// parts: that slice states the parts of the name or address too (the extensions of family
	// and line): their KBV lengths, and that a Namenszusatz has a value.
	parts bool
}

// rule reports a hand-written rule's finding at c: an error where the rule stands in for a profile
// the tables did not check, plausibility where they checked it and found nothing.
func (s personScope) rule(c *Cursor, code fhir.IssueCode, format string, args ...any) {
	if s.profiled {
		c.Warnf(code, format, args...)
	} else {
		c.Errorf(code, format, args...)
	}
}

// maxLen checks a KBV length the profile does not state (MaxLen) or leaves it to the tables.
func (s personScope) maxLen(c *Cursor, n int) {
	if !s.parts {
		c.MaxLen(n)
	}
}

// personMissing is a cursor for the absent child tag of c, to report at the child's location.
func personMissing(c *Cursor, tag string) *Cursor {
	return c.child(nil, tag, -1)
}

// personIDKind is one kind of identifier a resource may carry: its type coding, the identifier
// systems allowed with it (nil: any) and the value check (nil: the check ident knows for the system).
type personIDKind struct {
	name       string
	typeSystem string
	typeCode   string
	systems    []string
	check      func(string) error
	// formatByProfile: the profiles state the number's format (an invariant of its slice, or they
	// reject the identifier), so for a resource the tables checked only its check digit is left.
	formatByProfile bool
}

// personIdentifiers checks each identifier against the allowed kinds and returns the kind each
// one was recognised as (nil when unknown). With typeRequired, an identifier without a type is an
// error (the KBV profiles slice identifiers by their type).
func personIdentifiers(ids []*Cursor, kinds []personIDKind, typeRequired bool) []*personIDKind {
	out := make([]*personIDKind, len(ids))
	for i, id := range ids {
		out[i] = personIdentifier(id, kinds, typeRequired)
	}
	return out
}

func personIdentifier(id *Cursor, kinds []personIDKind, typeRequired bool) *personIDKind {
	id.Forbid("period")
	val, sys := id.One("value"), id.One("system")
	if !val.Exists() {
		val.Errorf(fhir.CodeRequired, "the identifier's value is required")
	} else {
		val.NotEmpty()
	}
	kind := personIDKindOf(id, kinds, typeRequired)
	if kind == nil {
		if val.Value() != "" {
			if err := ident.Check(sys.Value(), val.Value()); err != nil {
				val.Number(err)
			}
		}
		return nil
	}
	switch {
	case !sys.Exists() || sys.Value() == "":
		if kind.systems != nil {
			sys.Errorf(fhir.CodeRequired, "a %s identifier needs its system %s", kind.name, kind.systems[0])
		}
	case kind.systems != nil && !slices.Contains(kind.systems, sys.Value()):
		sys.Errorf(fhir.CodeValue, "a %s identifier has the system %s", kind.name, kind.systems[0])
	}
	if strings.TrimSpace(val.Value()) == "" {
		return kind
	}
	check := kind.check
	if check == nil {
		check = func(v string) error { return ident.Check(sys.Value(), v) }
	}
	if err := check(val.Value()); err != nil {
		val.Number(err)
	}
	return kind
}

// personIDKindOf recognises an identifier's kind (personKind) and reports a missing or unknown
// type.
func personIDKindOf(id *Cursor, kinds []personIDKind, typeRequired bool) *personIDKind {
	typ := id.One("type")
	untyped := !typ.Exists() || typ.Count("coding") == 0
	if untyped && typeRequired {
		what := make([]string, 0, len(kinds))
		for _, k := range kinds {
			if !slices.Contains(what, k.typeCode) {
				what = append(what, k.typeCode)
			}
		}
		typ.Errorf(fhir.CodeRequired, "the identifier's type is required (one of %s)", strings.Join(what, ", "))
	}
	if k := personKind(id, kinds); k != nil || untyped {
		return k
	}
	// Not recognised: say what is wrong with the first coding.
	cd := typ.All("coding")[0]
	cd.Require("system", "code")
	s, code := cd.One("system"), cd.One("code")
	allowed := []string{}
	known := false
	for _, k := range kinds {
		if k.typeSystem == s.Value() {
			known = true
		}
		if !slices.Contains(allowed, k.typeCode) {
			allowed = append(allowed, k.typeCode)
		}
	}
	switch {
	case !s.Exists() || !code.Exists():
	case known:
		code.Errorf(fhir.CodeValue, "identifier type %q is not allowed here; allowed are %s", code.Value(), strings.Join(allowed, ", "))
	default:
		s.Errorf(fhir.CodeValue, "the identifier type's code system is not one for these identifiers (allowed types: %s)", strings.Join(allowed, ", "))
	}
	return nil
}

// personKind is the kind of identifier an identifier's type coding names; without a type, the
// kind its system belongs to, if that is unambiguous. nil when neither tells.
func personKind(id *Cursor, kinds []personIDKind) *personIDKind {
	typ := id.One("type")
	if !typ.Exists() || typ.Count("coding") == 0 {
		sys := id.One("system").Value()
		for i := range kinds {
			if kinds[i].systems != nil && slices.Contains(kinds[i].systems, sys) {
				return &kinds[i]
			}
		}
		return nil
	}
	for _, cd := range typ.All("coding") {
		s, code := cd.One("system").Value(), cd.One("code").Value()
		for i := range kinds {
			if kinds[i].typeSystem == s && kinds[i].typeCode == code {
				return &kinds[i]
			}
		}
	}
	return nil
}

// personNames checks a resource's names: one per use, and at least one official name (or one
// without use). givenRequired: a first name is required in the official and usual name.
func personNames(c *Cursor, names []*Cursor, givenRequired bool) {
	seen := map[string]bool{}
	official := false
	for _, n := range names {
		use := n.One("use")
		u := use.Value()
		if use.Exists() && !personNameUses[u] {
			use.Errorf(fhir.CodeValue, "a name's use is official, usual (master data) or maiden (birth name), not %q", u)
			continue
		}
		key := u
		if key == "" {
			key = "official"
		}
		if seen[key] {
			use.Errorf(fhir.CodeStructure, "there is only one %s name", key)
		}
		seen[key] = true
		if key == "official" {
			official = true
		}
		personName(n, givenRequired && key != "maiden")
	}
	if len(names) > 0 && !official {
		personMissing(c, "name").Errorf(fhir.CodeInvariant, "one name must be the official name (use official)")
	}
}

// personName checks a HumanName (personNameIn) with every rule, as errors.
func personName(n *Cursor, givenRequired bool) { personNameIn(n, givenRequired, personScope{}) }

// personNameParts are the parts of a family name (humanname-de-basis), with their KBV lengths.
var personNameParts = []struct {
	url, what string
	max       int
}{
	{personExtOwnName, "Nachname", personMaxNachname},
	{personExtOwnPrefix, "Vorsatzwort", personMaxVorsatzwort},
	{personExtNamenszusatz, "Namenszusatz", personMaxNamenszusatz},
}

// personNameIn checks a HumanName: family required, its parts (Nachname, Vorsatzwort,
// Namenszusatz) within the KBV lengths and contained in family, one given name (all first names
// in one element), at most one academic title marked with the qualifier AC. givenRequired: a
// first name is required.
func personNameIn(n *Cursor, givenRequired bool, s personScope) {
	fam := n.One("family")
	if !fam.Exists() {
		if !s.kbv {
			s.rule(fam, fhir.CodeRequired, "the family name is required")
		}
	} else {
		fam.NotEmpty()
		anyPart := false
		for _, p := range personNameParts {
			exts := fam.Extension(p.url)
			// humanname-de-basis allows one Namenszusatz.
			if len(exts) > 1 && !(s.profiled && p.url == personExtNamenszusatz) {
				s.rule(exts[1], fhir.CodeStructure, "the %s may be given only once", p.what)
			}
			for _, e := range exts {
				anyPart = true
				v := e.One("valueString")
				if !v.Exists() {
					if !(s.parts && p.url == personExtNamenszusatz) {
						e.Errorf(fhir.CodeRequired, "the %s extension needs a valueString", p.what) // FHIR core ext-1
					}
					continue
				}
				v.NotEmpty()
				s.maxLen(v, p.max)
				if t := strings.TrimSpace(v.Value()); t != "" && !strings.Contains(fam.Value(), t) {
					s.rule(fam, fhir.CodeInvariant, "the family name must contain the %s given in its extension", p.what)
				}
			}
		}
		if !anyPart {
			fam.MaxLen(personMaxNachname) // no profile states it for family itself
		}
	}
	givens := n.All("given")
	if !s.kbv {
		if givenRequired && len(givens) == 0 {
			s.rule(personMissing(n, "given"), fhir.CodeRequired, "the first name is required")
		}
		if len(givens) > 1 {
			s.rule(givens[1], fhir.CodeStructure, "all first names go into one given element")
		}
	}
	for _, g := range givens {
		g.NotEmpty()
		s.maxLen(g, personMaxGiven)
	}
	prefixes := n.All("prefix")
	if len(prefixes) > 1 && !s.kbv {
		s.rule(prefixes[1], fhir.CodeStructure, "all academic titles go into one prefix element")
	}
	for _, p := range prefixes {
		p.NotEmpty()
		s.maxLen(p, personMaxPrefix)
		if s.kbv {
			continue
		}
		q := p.Extension(personExtQualifier)
		if len(q) == 0 {
			s.rule(p, fhir.CodeRequired, "an academic title needs the extension %s with the code AC", personExtQualifier)
		}
		for _, e := range q {
			if v := e.One("valueCode"); v.Value() != "AC" {
				s.rule(v, fhir.CodeValue, "the name prefix qualifier is AC (academic title)")
			}
		}
	}
}

// personAddress checks an address (personAddressIn) with every rule, as errors.
func personAddress(a *Cursor) { personAddressIn(a, personScope{}) }

// personAddressParts are the parts of an address line (address-de-basis), with their KBV lengths.
var personAddressParts = []struct {
	url, what string
	max       int
}{
	{personExtStreet, "street name", personMaxStreet},
	{personExtHouseNumber, "house number", personMaxHouseNumber},
	{personExtLocator, "address supplement", personMaxLocator},
	{personExtPostBox, "post box", personMaxPostBox},
}

// personAddressIn checks an address (address-de-basis, KBV Strassenanschrift/Postfach): the
// parts in line extensions within the KBV lengths and contained in the line, street address or
// post box, city required, postal code 5 digits in Germany, country a DEÜV Anlage 8 code.
func personAddressIn(a *Cursor, s personScope) {
	typ := a.One("type")
	if typ.Exists() && !personAddressTypes[typ.Value()] {
		typ.Errorf(fhir.CodeValue, "an address type is both (street address), postal (post box) or physical, not %q", typ.Value()) // FHIR core
	}
	var street, postBox bool
	for _, line := range a.All("line") {
		line.NotEmpty()
		for _, p := range personAddressParts {
			exts := line.Extension(p.url)
			if len(exts) > 1 && !s.profiled { // address-de-basis: each part once per line
				exts[1].Errorf(fhir.CodeStructure, "the %s may be given only once per line", p.what)
			}
			for _, e := range exts {
				switch p.url {
				case personExtStreet, personExtHouseNumber:
					street = true
				case personExtPostBox:
					postBox = true
				}
				v := e.One("valueString")
				if !v.Exists() {
					e.Errorf(fhir.CodeRequired, "the %s extension needs a valueString", p.what) // FHIR core ext-1
					continue
				}
				v.NotEmpty()
				s.maxLen(v, p.max)
				if t := strings.TrimSpace(v.Value()); t != "" && !strings.Contains(line.Value(), t) {
					line.Warnf(fhir.CodeInvariant, "the address line should contain the %s given in its extension", p.what)
				}
			}
		}
	}
	// address-de-basis states the first two as warnings (add-6, add-4); the KBV street address
	// forbids the post box, the KBV post box the street and house number.
	switch {
	case s.kbv:
	case street && postBox:
		a.Warnf(fhir.CodeInvariant, "an address is either a street address or a post box, not both")
	case postBox && (typ.Value() == "both" || typ.Value() == "physical"):
		typ.Warnf(fhir.CodeInvariant, "a post box address has the type postal")
	case street && typ.Value() == "postal":
		typ.Warnf(fhir.CodeInvariant, "a street address has the type both, not postal")
	}

	city := a.One("city")
	if !city.Exists() {
		s.rule(city, fhir.CodeRequired, "the city is required")
	} else {
		city.NotEmpty()
		s.maxLen(city, personMaxCity)
	}
	// The AWS slices state the country's length (3), the e-prescription's do not.
	country := a.One("country")
	v := country.Value()
	if country.Exists() && !personCountry.MatchString(v) && !(s.parts && !a.rep.prescription && utf8.RuneCountInString(v) > 3) {
		s.rule(country, fhir.CodeValue, "the country is a code of DEÜV Anlage 8: one to three capital letters, D for Germany")
	}
	plz := a.One("postalCode")
	switch {
	case plz.Exists():
		plz.NotEmpty()
		s.maxLen(plz, personMaxPostalCode)
		if v == "D" && plz.Value() != "" && !personGermanPLZ.MatchString(plz.Value()) {
			plz.Warnf(fhir.CodeValue, "a German postal code is five digits")
		}
	case v == "D":
		s.rule(plz, fhir.CodeRequired, "the postal code is required for an address in Germany")
	}
}

// personTelecom checks a contact point: system and value present, system known, phone and fax
// numbers made of digits (and + - / ( ) spaces) within 30 characters, e-mail addresses name@domain.
func personTelecom(t *Cursor) {
	t.Require("system", "value")
	sys, val := t.One("system"), t.One("value")
	if sys.Exists() && !personTelecomSystems[sys.Value()] {
		sys.Errorf(fhir.CodeValue, "a contact point's system is phone, fax, email, pager, url, sms or other, not %q", sys.Value())
	}
	if !val.Exists() {
		return
	}
	val.NotEmpty()
	v := strings.TrimSpace(val.Value())
	if v == "" {
		return
	}
	switch sys.Value() {
	case "phone", "fax", "sms", "pager":
		val.MaxLen(personMaxPhone)
		if !personPhone.MatchString(v) {
			val.Warnf(fhir.CodeValue, "a phone or fax number is made of digits, spaces and + - / ( )")
		}
	case "email":
		val.MaxLen(personMaxEmail)
		if !personEmail.MatchString(v) {
			val.Warnf(fhir.CodeValue, "an e-mail address has the form name@domain")
		}
	}
}

// personGender checks a gender (personGenderIn) with every rule, as errors.
func personGender(g *Cursor) { personGenderIn(g, personScope{}) }

// personGenderIn checks administrative gender and its German differentiation: the extension
// gender-amtlich-de (D divers, X unbestimmt) belongs to gender other (pat-de-1 of AWS), and other
// needs it (pat-de-1 of de.basisprofil 1.5). Where the tables checked the resource, they check the
// extension's code against its definition; in a KBV slice (kbv) also that it occurs once and only
// with gender other.
func personGenderIn(g *Cursor, s personScope) {
	if !g.Exists() {
		return
	}
	if !personGenders[g.Value()] {
		g.Errorf(fhir.CodeValue, "the gender is male, female, other or unknown") // FHIR core
	}
	exts := g.Extension(personExtGender)
	if len(exts) > 1 && !s.kbv {
		s.rule(exts[1], fhir.CodeStructure, "the extension %s may occur only once", personExtGender)
	}
	for _, e := range exts {
		if s.profiled {
			break
		}
		// Checked here rather than with ValueCoding, whose message would repeat the person's code.
		v := e.One("valueCoding")
		if !v.Exists() {
			e.Errorf(fhir.CodeRequired, "valueCoding is required")
			continue
		}
		v.Require("system", "code")
		sys, code := v.One("system"), v.One("code")
		switch {
		case sys.Exists() && sys.Value() != personGenderAmtlich:
			sys.Errorf(fhir.CodeValue, "the code system must be %s", personGenderAmtlich)
		case code.Exists() && !personGenderAmtlichD[code.Value()]:
			code.Errorf(fhir.CodeValue, "the differentiation of gender other is D (divers) or X (unbestimmt)")
		}
	}
	switch {
	case g.Value() == "other" && len(exts) == 0:
		s.rule(g, fhir.CodeInvariant, "gender other needs the extension %s (D divers or X unbestimmt)", personExtGender)
	case g.Value() != "other" && len(exts) > 0 && !s.kbv:
		s.rule(exts[0], fhir.CodeInvariant, "the extension %s is only allowed with gender other", personExtGender)
	}
}

// personReference checks a Reference: the reference is required and, for a resource the profile
// tables did not check, the type it names (Type/id, an absolute URL ending so) must be one of
// types. How it is written is checked for every reference (coreRules).
func personReference(r *Cursor, types ...string) {
	if !r.Exists() {
		return
	}
	ref := r.One("reference")
	if !ref.Exists() {
		ref.Errorf(fhir.CodeRequired, "the reference is required (%s/id or urn:uuid:…)", types[0])
		return
	}
	if r.rep.profiled {
		return
	}
	if typ, ok := refType(strings.TrimSpace(ref.Value())); ok && typ != "" && !slices.Contains(types, typ) {
		ref.Errorf(fhir.CodeValue, "the reference must point to a resource of type %s, not %s", strings.Join(types, " or "), typ)
	}
}
