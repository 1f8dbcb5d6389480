package kbv

import (
	"regexp"
	"slices"
	"strings"
	"time"

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

// KBV text limits (KBV_PR_FOR_Patient/_Practitioner/_Organization; KVDT field lengths).
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
		{name: "KVNR", typeSystem: personDeIDType, typeCode: "KVZ10", systems: personKVNRSystems, check: ident.KVNR},
		{name: "KVNR", typeSystem: personDeIDType, typeCode: "GKV", systems: personKVNRSystems, check: ident.KVNR},
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

// A Patient checked against KBV_PR_AW_Patient by the profile tables (c.rep.profiled) gets here
// what the tables do not cover: the identifier, name and address slices of KBV_PR_Base_Patient
// (KBV Basis is not among the definitions read, so the tables cannot tell the slices apart), the
// German name and address parts, value sets that were not read, and plausibility. Any other
// Patient (the e-prescription's KBV_PR_FOR_Patient, a profile the tables do not hold) gets all
// rules here, until the profile tables cover those profiles.
func patient(c *Cursor) {
	aws := c.rep.profiled
	// Identifiers: each of a known kind, at most one KVNR (the AWS slices pid,
	// versichertenId_GKV, versichertennummer_pkv, reisepassnummer, versichertennummer_kvk).
	if c.Count("identifier") == 0 && !aws {
		personMissing(c, "identifier").Errorf(fhir.CodeRequired, "a patient needs at least one identifier (KVNR, patient number, PKV number or passport number)")
	}
	ids := c.All("identifier")
	kvnr := 0
	for i, k := range personIdentifiers(ids, patientIDKinds, true) {
		if k != nil && k.name == "KVNR" {
			kvnr++
			if kvnr > 1 {
				ids[i].Errorf(fhir.CodeStructure, "a patient has only one KVNR")
			}
		}
	}

	// Names: closed slicing by use (official, usual, maiden), at most three, one per use.
	names := c.All("name")
	switch {
	case len(names) == 0:
		personMissing(c, "name").Errorf(fhir.CodeRequired, "the patient's name is required")
	case len(names) > 3 && !aws:
		personMissing(c, "name").Errorf(fhir.CodeStructure, "a patient has at most three names (official, usual and maiden name), found %d", len(names))
	}
	personNames(c, names, true)

	personGender(c.One("gender"))
	patientBirthDate(c)

	if !aws {
		// deceased only as a date-time (AWS closes the type slicing).
		c.Forbid("deceasedBoolean", "multipleBirthBoolean", "multipleBirthInteger", "managingOrganization", "link")
	}
	if dec := c.One("deceasedDateTime"); dec.Exists() {
		dec.NotFuture(false)
		v := dec.Value()
		if t, err := ParseDate(v); err == nil && (datePattern.MatchString(v) || dateTimePattern.MatchString(v)) {
			if b, ok := patientBirth(c); ok && !sameDayOrLater(t, b) {
				dec.Warnf(fhir.CodeInvariant, "the date of death lies before the date of birth")
			}
		}
	}

	for _, a := range c.All("address") {
		personAddress(a)
	}
	for _, t := range c.All("telecom") {
		personTelecom(t)
	}

	if ms := c.One("maritalStatus"); ms.Exists() {
		patientMaritalStatusCheck(ms, aws)
	}
	for _, ct := range c.All("contact") {
		patientContact(ct, aws)
	}
	for _, cm := range c.All("communication") {
		cm.Require("language") // FHIR core
		if !aws {
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
	if !aws {
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
			gp.Errorf(fhir.CodeRequired, "the general practitioner needs a reference or a LANR")
		}
	}
}

// patientBirthDate checks birthDate: present (or marked unknown with data-absent-reason, as the
// AWS requirements catalogue asks and KBV_PR_Base_Patient requires; until the profile tables cover
// KBV Basis), a real date, and plausibly neither in the future nor more than 150 years ago.
func patientBirthDate(c *Cursor) {
	bd := c.One("birthDate")
	switch {
	case !bd.Exists():
		bd.Errorf(fhir.CodeRequired, "the date of birth is required; if it is wholly unknown, mark it with the data-absent-reason extension")
		return
	case bd.Element().SelectAttr("value") == nil:
		if len(bd.Extension(personExtAbsent)) == 0 && len(bd.Element().ChildElements()) > 0 { // empty: ele-1
			bd.Errorf(fhir.CodeRequired, "the date of birth needs a value or a data-absent-reason extension")
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
	if v == "" || !datePattern.MatchString(v) {
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

// patientMaritalStatusCheck checks the marital status's code (until the profile tables cover its
// value set: the tables bind it to none they hold).
func patientMaritalStatusCheck(ms *Cursor, aws bool) {
	if !aws {
		ms.Require("coding")
		ms.Max("coding", 1)
	}
	for _, cd := range ms.All("coding") {
		if !aws {
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
// recipient), with name, telecom and address checked like the patient's own.
func patientContact(ct *Cursor, aws bool) {
	if !aws {
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
	if n := ct.One("name"); n.Exists() {
		personName(n, false)
	}
	for _, t := range ct.All("telecom") {
		personTelecom(t)
	}
	if a := ct.One("address"); a.Exists() {
		personAddress(a)
	}
	personGender(ct.One("gender"))
	if org := ct.One("organization"); org.Exists() {
		personReference(org, "Organization")
	}
}

// personMissing is a cursor for the absent child tag of c, to report at the child's location.
func personMissing(c *Cursor, tag string) *Cursor {
	return &Cursor{path: c.path + "." + tag, rep: c.rep}
}

// personIDKind is one kind of identifier a resource may carry: its type coding, the identifier
// systems allowed with it (nil: any) and the value check (nil: the check ident knows for the system).
type personIDKind struct {
	name       string
	typeSystem string
	typeCode   string
	systems    []string
	check      func(string) error
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

// personIDKindOf recognises an identifier's kind by its type coding and reports a missing or
// unknown type. Without a type, the kind is inferred from the system, if it is unambiguous.
func personIDKindOf(id *Cursor, kinds []personIDKind, typeRequired bool) *personIDKind {
	typ := id.One("type")
	if !typ.Exists() || typ.Count("coding") == 0 {
		if typeRequired {
			what := make([]string, 0, len(kinds))
			for _, k := range kinds {
				if !slices.Contains(what, k.typeCode) {
					what = append(what, k.typeCode)
				}
			}
			typ.Errorf(fhir.CodeRequired, "the identifier's type is required (one of %s)", strings.Join(what, ", "))
		}
		sys := id.One("system").Value()
		for i := range kinds {
			if kinds[i].systems != nil && slices.Contains(kinds[i].systems, sys) {
				return &kinds[i]
			}
		}
		return nil
	}
	codings := typ.All("coding")
	for _, cd := range codings {
		s, code := cd.One("system").Value(), cd.One("code").Value()
		for i := range kinds {
			if kinds[i].typeSystem == s && kinds[i].typeCode == code {
				return &kinds[i]
			}
		}
	}
	// Not recognised: say what is wrong with the first coding.
	cd := codings[0]
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

// personName checks a HumanName: family required, its parts (Nachname, Vorsatzwort,
// Namenszusatz) within the KBV lengths and contained in family, one given name (all first names
// in one element), at most one academic title marked with the qualifier AC.
func personName(n *Cursor, givenRequired bool) {
	fam := n.One("family")
	if !fam.Exists() {
		fam.Errorf(fhir.CodeRequired, "the family name is required")
	} else {
		fam.NotEmpty()
		parts := []struct {
			url, what string
			max       int
		}{
			{personExtOwnName, "Nachname", personMaxNachname},
			{personExtOwnPrefix, "Vorsatzwort", personMaxVorsatzwort},
			{personExtNamenszusatz, "Namenszusatz", personMaxNamenszusatz},
		}
		anyPart := false
		for _, p := range parts {
			exts := fam.Extension(p.url)
			if len(exts) > 1 {
				exts[1].Errorf(fhir.CodeStructure, "the %s may be given only once", p.what)
			}
			for _, e := range exts {
				anyPart = true
				v := e.One("valueString")
				if !v.Exists() {
					e.Errorf(fhir.CodeRequired, "the %s extension needs a valueString", p.what)
					continue
				}
				v.NotEmpty()
				v.MaxLen(p.max)
				if s := strings.TrimSpace(v.Value()); s != "" && !strings.Contains(fam.Value(), s) {
					fam.Errorf(fhir.CodeInvariant, "the family name must contain the %s given in its extension", p.what)
				}
			}
		}
		if !anyPart {
			fam.MaxLen(personMaxNachname)
		}
	}
	givens := n.All("given")
	if givenRequired && len(givens) == 0 {
		personMissing(n, "given").Errorf(fhir.CodeRequired, "the first name is required")
	}
	if len(givens) > 1 {
		givens[1].Errorf(fhir.CodeStructure, "all first names go into one given element")
	}
	for _, g := range givens {
		g.NotEmpty()
		g.MaxLen(personMaxGiven)
	}
	prefixes := n.All("prefix")
	if len(prefixes) > 1 {
		prefixes[1].Errorf(fhir.CodeStructure, "all academic titles go into one prefix element")
	}
	for _, p := range prefixes {
		p.NotEmpty()
		p.MaxLen(personMaxPrefix)
		q := p.Extension(personExtQualifier)
		if len(q) == 0 {
			p.Errorf(fhir.CodeRequired, "an academic title needs the extension %s with the code AC", personExtQualifier)
		}
		for _, e := range q {
			if v := e.One("valueCode"); v.Value() != "AC" {
				v.Errorf(fhir.CodeValue, "the name prefix qualifier is AC (academic title)")
			}
		}
	}
}

// personAddress checks an address (address-de-basis, KBV Strassenanschrift/Postfach): the parts
// in line extensions within the KBV lengths and contained in the line, city required, postal
// code 5 digits in Germany, country a DEÜV Anlage 8 code.
func personAddress(a *Cursor) {
	typ := a.One("type")
	if typ.Exists() && !personAddressTypes[typ.Value()] {
		typ.Errorf(fhir.CodeValue, "an address type is both (street address), postal (post box) or physical, not %q", typ.Value())
	}
	var street, postBox bool
	for _, line := range a.All("line") {
		line.NotEmpty()
		parts := []struct {
			url, what string
			max       int
		}{
			{personExtStreet, "street name", personMaxStreet},
			{personExtHouseNumber, "house number", personMaxHouseNumber},
			{personExtLocator, "address supplement", personMaxLocator},
			{personExtPostBox, "post box", personMaxPostBox},
		}
		for _, p := range parts {
			exts := line.Extension(p.url)
			if len(exts) > 1 {
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
					e.Errorf(fhir.CodeRequired, "the %s extension needs a valueString", p.what)
					continue
				}
				v.NotEmpty()
				v.MaxLen(p.max)
				if s := strings.TrimSpace(v.Value()); s != "" && !strings.Contains(line.Value(), s) {
					line.Warnf(fhir.CodeInvariant, "the address line should contain the %s given in its extension", p.what)
				}
			}
		}
	}
	// address-de-basis states the first two as warnings (add-6, add-4).
	switch {
	case street && postBox:
		a.Warnf(fhir.CodeInvariant, "an address is either a street address or a post box, not both")
	case postBox && (typ.Value() == "both" || typ.Value() == "physical"):
		typ.Warnf(fhir.CodeInvariant, "a post box address has the type postal")
	case street && typ.Value() == "postal":
		typ.Warnf(fhir.CodeInvariant, "a street address has the type both, not postal")
	}

	city := a.One("city")
	if !city.Exists() {
		city.Errorf(fhir.CodeRequired, "the city is required")
	} else {
		city.NotEmpty()
		city.MaxLen(personMaxCity)
	}
	country := a.One("country")
	if country.Exists() && !personCountry.MatchString(country.Value()) {
		country.Errorf(fhir.CodeValue, "the country is a code of DEÜV Anlage 8: one to three capital letters, D for Germany")
	}
	plz := a.One("postalCode")
	switch {
	case plz.Exists():
		plz.NotEmpty()
		plz.MaxLen(personMaxPostalCode)
		if country.Value() == "D" && plz.Value() != "" && !personGermanPLZ.MatchString(plz.Value()) {
			plz.Warnf(fhir.CodeValue, "a German postal code is five digits")
		}
	case country.Value() == "D":
		plz.Errorf(fhir.CodeRequired, "the postal code is required for an address in Germany")
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

// personGender checks administrative gender and its German differentiation: the extension
// gender-amtlich-de (D divers, X unbestimmt) belongs to gender other, and other needs it (pat-de-1).
func personGender(g *Cursor) {
	if !g.Exists() {
		return
	}
	if !personGenders[g.Value()] {
		g.Errorf(fhir.CodeValue, "the gender is male, female, other or unknown")
	}
	exts := g.Extension(personExtGender)
	if len(exts) > 1 {
		exts[1].Errorf(fhir.CodeStructure, "the extension %s may occur only once", personExtGender)
	}
	for _, e := range exts {
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
		g.Errorf(fhir.CodeInvariant, "gender other needs the extension %s (D divers or X unbestimmt)", personExtGender)
	case g.Value() != "other" && len(exts) > 0:
		exts[0].Errorf(fhir.CodeInvariant, "the extension %s is only allowed with gender other", personExtGender)
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
