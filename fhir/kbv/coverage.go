package kbv

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
)

// Coverage: KBV_PR_AW_Krankenversicherungsverhaeltnis, with the GKV extensions and payor rules
// of KBV_PR_FOR_Coverage (the insurance data read from the eGK or typed in from the card).

func init() { register("Coverage", coverage) }

const (
	coverageVersicherungsart = "http://fhir.de/CodeSystem/versicherungsart-de-basis"
	coveragePayorTypeKBV     = "https://fhir.kbv.de/CodeSystem/KBV_CS_FOR_Payor_Type_KBV"
	coverageKVIDTyp          = "https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Krankenversicherung_ID_Typ"

	coverageCSVersichertenart = "https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_KBV_VERSICHERTENSTATUS"
	coverageCSPersonengruppe  = "https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_KBV_PERSONENGRUPPE"
	coverageCSDMP             = "https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_KBV_DMP"
	coverageCSWOP             = "https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_ITA_WOP"

	coverageGKV                = "http://fhir.de/StructureDefinition/gkv/"
	coverageExtVersichertenart = coverageGKV + "versichertenart"
	coverageExtPersonengruppe  = coverageGKV + "besondere-personengruppe"
	coverageExtDMP             = coverageGKV + "dmp-kennzeichen"
	coverageExtWOP             = coverageGKV + "wop"
	coverageExtZuzahlung       = coverageGKV + "zuzahlungsstatus"
	coverageExtRuhend          = coverageGKV + "ruhender-leistungsanspruch"
	coverageExtKostenerst      = coverageGKV + "kostenerstattung"
	coverageExtEinlesedatum    = coverageGKV + "einlesedatum-karte"
	coverageExtOnline          = coverageGKV + "onlinepruefung-egk"
	coverageExtVersionVSDM     = coverageGKV + "version-vsdm"
	coverageExtGenerationEGK   = coverageGKV + "generation-egk"
	coverageExtSKT             = "https://fhir.kbv.de/StructureDefinition/KBV_EX_AW_SKT_Zusatzangabe"
	coverageExtAlternativeIK   = "https://fhir.kbv.de/StructureDefinition/KBV_EX_FOR_Alternative_IK"

	// coverageMaxPayorName is the KBV limit for the payor's name (Kostenträgername).
	coverageMaxPayorName = 45
)

var (
	// coverageTypes is KBV_VS_FOR_Payor_type plus the rest of versicherungsart-de-basis (AWS binds
	// the whole de-basis value set): the code lists per code system.
	coverageTypes = map[string]CodeSet{
		coverageVersicherungsart: codes("GKV", "PKV", "BG", "SEL", "SOZ", "GPV", "PPV", "BEI"),
		coveragePayorTypeKBV:     codes("SKT", "UK"),
	}

	// KBV_CS_SFHIR_KBV_VERSICHERTENSTATUS: 1 Mitglied, 3 Familienversicherter, 5 Rentner.
	coverageVersichertenart = codes("1", "3", "5")

	// KBV_CS_SFHIR_KBV_PERSONENGRUPPE: 00 nicht gesetzt, 04 BSHG (§ 264 SGB V), 06 BVG,
	// 07 SVA-Kennzeichnung (zwischenstaatliches Krankenversicherungsrecht), 08 SVA pauschal,
	// 09 AsylbLG (§§ 4 und 6).
	coveragePersonengruppe = codes("00", "04", "06", "07", "08", "09")

	// KBV_CS_SFHIR_ITA_WOP: Wohnortprinzip, the KV region of the insured person's residence
	// (00 is the dummy on eGK).
	coverageWOP = codes("00", "01", "02", "03", "17", "20", "38", "46", "47", "48", "49", "50",
		"51", "52", "55", "60", "61", "62", "71", "72", "73", "78", "83", "88", "93", "98")

	// coverageRuhendArt: kind of suspended entitlement, 1 vollständig, 2 eingeschränkt.
	coverageRuhendArt = codes("1", "2")

	// coverageOnlineErgebnis: result of the online check of the eGK (VSDM Prüfungsnachweis 1–6).
	coverageOnlineErgebnis = codes("1", "2", "3", "4", "5", "6")

	// coverageWithCardData are the insurance types whose insured carry the GKV card data
	// (Versichertenart, besondere Personengruppe, DMP): KBV_PR_FOR_Coverage invariants
	// Versichertenart-Pflicht, Besondere-Personengruppe-Pflicht, DMP-Pflicht, IK-zustaendige-Krankenkasse.
	coverageWithCardData = codes("GKV", "BG", "SKT", "UK", "PKV")
)

// coverageDMPTable is one version of KBV_CS_SFHIR_KBV_DMP with the day it took effect.
type coverageDMPTable struct {
	from  time.Time
	codes CodeSet
}

// coverageDMPVersions are the versions of the DMP key table, newest last. Version 1.05 has the
// single programmes 01–11; version 1.06 (in force from 2024-10-01) adds 12 Adipositas and the
// combination codes 30–58 that the eGK stores. A DMP code is checked against the table in force
// at the check's clock.
var coverageDMPVersions = []coverageDMPTable{
	{time.Time{}, codes("00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11")},
	{time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC), coverageDMP106()},
}

func coverageDMP106() CodeSet {
	s := codes("00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12")
	for i := 30; i <= 58; i++ {
		s[strconv.Itoa(i)] = true
	}
	return s
}

// coverageDMPCodes is the DMP key table in force at t.
func coverageDMPCodes(t time.Time) CodeSet {
	set := coverageDMPVersions[0].codes
	for _, v := range coverageDMPVersions {
		if !t.Before(v.from) {
			set = v.codes
		}
	}
	return set
}

var (
	// coverageIDKinds are the AWS slices of Coverage.identifier.
	coverageIDKinds = []personIDKind{
		{name: "KVNR", typeSystem: personDeIDType, typeCode: "KVZ10", systems: personKVNRSystems, check: ident.KVNR},
		{name: "KVNR", typeSystem: personDeIDType, typeCode: "GKV", systems: personKVNRSystems, check: ident.KVNR},
		{name: "PKV-Versichertennummer", typeSystem: personDeIDType, typeCode: "PKV"},
		{name: "KVK-Versichertennummer", typeSystem: personKBVIDType, typeCode: "kvk", systems: personKVKSystems},
		{name: "Pseudo-KVNR", typeSystem: personKBVIDType, typeCode: "PseudoversichertenID", systems: []string{"http://fhir.de/NamingSystem/gkv/pseudo-kvid"}},
	}
	// coverageSubscriberKinds: the main insured person's number (HauptversichertenID).
	coverageSubscriberKinds = []personIDKind{
		{name: "HauptversichertenID", typeSystem: coverageKVIDTyp, typeCode: "HauptversichertenID"},
	}
)

// A Coverage checked against KBV_PR_AW_Krankenversicherungsverhaeltnis by the profile tables
// (c.rep.profiled) gets here what the tables do not cover: the insurance type's codes
// (versicherungsart-de-basis is not among the value sets read), the GKV extensions whose
// definitions or value sets were not read, the KVZ10 identifier the e-prescription uses, and
// plausibility. Any other Coverage (the e-prescription's KBV_PR_FOR_Coverage, a profile the tables
// do not hold) gets all rules here, until the profile tables cover those profiles.
func coverage(c *Cursor) {
	aws := c.rep.profiled
	if !aws {
		c.Forbid("policyHolder", "subscriberId", "dependent", "relationship", "class", "order", "network", "costToBeneficiary", "subrogation", "contract")
	}

	// FHIR core: status, beneficiary and payor are required.
	status := c.One("status")
	switch {
	case !status.Exists():
		status.Errorf(fhir.CodeRequired, "the status is required (active or cancelled)")
	case aws && !coverageStatus[status.Value()]:
		status.Errorf(fhir.CodeValue, "%q is not a status of an insurance relationship; allowed are %s", status.Value(), orList(sortedCodes(coverageStatus)))
	case !aws && status.Value() != "active" && status.Value() != "cancelled":
		status.Errorf(fhir.CodeValue, "an insurance relationship is active or cancelled, not %q", status.Value())
	}

	typ := coverageType(c, aws)

	if !aws {
		c.Max("identifier", 1)
	}
	personIdentifiers(c.All("identifier"), coverageIDKinds, true)

	ben := c.One("beneficiary")
	if !ben.Exists() {
		ben.Errorf(fhir.CodeRequired, "the insured patient (beneficiary) is required")
	}
	personReference(ben, "Patient")

	if sub := c.One("subscriber"); sub.Exists() {
		switch {
		case sub.Count("reference") > 0:
			personReference(sub, "Patient", "RelatedPerson")
		case sub.Count("identifier") > 0:
			if aws {
				sub.One("identifier").Identifier()
			} else {
				personIdentifier(sub.One("identifier"), coverageSubscriberKinds, true)
			}
			if sub.Count("display") == 0 {
				personMissing(sub, "display").Warnf(fhir.CodeRequired, "the main insured person's name (display) should be given with the HauptversichertenID")
			}
		default:
			sub.Errorf(fhir.CodeRequired, "the main insured person needs a reference or a HauptversichertenID with name")
		}
	}

	c.One("period").Period()

	coveragePayor(c, typ, aws)
	coverageExtensions(c, typ, aws)
}

// coverageStatus is FHIR core's FinancialResourceStatusCodes.
var coverageStatus = codes("active", "cancelled", "draft", "entered-in-error")

// coverageType checks Coverage.type (one coding from versicherungsart-de-basis or, for SKT and
// UK, KBV_CS_FOR_Payor_Type_KBV) and returns the code when it is valid. The codes are checked
// until the profile tables cover versicherungsart-de-basis; the rest only where the tables did not
// check the resource.
func coverageType(c *Cursor, aws bool) string {
	t := c.One("type")
	if !t.Exists() {
		t.Errorf(fhir.CodeRequired, "the insurance type is required (GKV, PKV, BG, SEL, …)")
		return ""
	}
	cds := t.All("coding")
	if len(cds) == 0 {
		if !aws {
			personMissing(t, "coding").Errorf(fhir.CodeRequired, "the insurance type needs a coding from %s", coverageVersicherungsart)
		}
		return ""
	}
	if !aws {
		t.Max("coding", 1)
		cds[0].Require("system", "code")
	}
	cd := cds[0]
	sys, code := cd.One("system"), cd.One("code")
	set, ok := coverageTypes[sys.Value()]
	switch {
	case !sys.Exists() || !code.Exists():
		return ""
	case !ok:
		if !aws {
			sys.Errorf(fhir.CodeValue, "the insurance type is coded with %s (or %s for SKT and UK)", coverageVersicherungsart, coveragePayorTypeKBV)
		}
		return ""
	case !set[code.Value()]:
		code.Errorf(fhir.CodeValue, "code %q is not in %s", code.Value(), sys.Value())
		return ""
	}
	return code.Value()
}

// coveragePayor checks the payor (Kostenträger): one, with the IK of the health insurance and its
// name.
func coveragePayor(c *Cursor, typ string, aws bool) {
	payors := c.All("payor")
	if len(payors) == 0 {
		personMissing(c, "payor").Errorf(fhir.CodeRequired, "the payor (Kostenträger) is required")
		return
	}
	if len(payors) > 1 && !aws {
		payors[1].Errorf(fhir.CodeStructure, "an insurance relationship has one payor, found %d", len(payors))
	}
	p := payors[0]
	name := p.One("display")
	if !name.Exists() {
		if !aws {
			name.Errorf(fhir.CodeRequired, "the payor's name (Kostenträgername) is required")
		}
	} else {
		name.NotEmpty()
		name.MaxLen(coverageMaxPayorName)
	}
	id := p.One("identifier")
	if !id.Exists() {
		if typ != "SEL" && !aws {
			id.Errorf(fhir.CodeRequired, "the payor's IK (Institutionskennzeichen) is required")
		}
		if p.Count("reference") > 0 {
			personReference(p, "Organization", "Patient", "RelatedPerson")
		}
		return
	}
	coverageIK(id, "payor's IK", aws)
	alt := id.Extension(coverageExtAlternativeIK)
	if len(alt) > 1 && !aws {
		alt[1].Errorf(fhir.CodeStructure, "the alternative IK may be given only once")
	}
	for _, e := range alt {
		v := e.One("valueIdentifier")
		if !v.Exists() {
			if !aws {
				e.Errorf(fhir.CodeRequired, "the alternative IK extension needs a valueIdentifier")
			}
			continue
		}
		coverageIK(v, "alternative IK", aws)
	}
}

// coverageIK checks an Identifier that must be an IK: its system (where the profile tables did not
// check it: identifier-iknr fixes it) and nine digits with check digit.
func coverageIK(id *Cursor, what string, aws bool) {
	sys, val := id.One("system"), id.One("value")
	switch {
	case aws:
	case !sys.Exists():
		sys.Errorf(fhir.CodeRequired, "the %s needs the system %s", what, personIKSystems[0])
	case !slices.Contains(personIKSystems, sys.Value()):
		sys.Errorf(fhir.CodeValue, "the %s has the system %s", what, personIKSystems[0])
	}
	if !val.Exists() {
		if !aws {
			val.Errorf(fhir.CodeRequired, "the %s's value is required", what)
		}
		return
	}
	if err := ident.IK(val.Value()); err != nil {
		val.Number(err)
	}
}

// coverageExtensions checks the GKV extensions: each at most once, values from their KBV key
// tables (where the profile tables do not: besondere-personengruppe and the VSDM extensions are
// not among the definitions read, KBV_VS_SFHIR_KBV_VERSICHERTENSTATUS not among the value sets),
// and, for the e-prescription's KBV_PR_FOR_Coverage, the card data it requires of insured
// persons of GKV, BG, SKT, UK and PKV. KBV_PR_AW_Krankenversicherungsverhaeltnis does not require
// them (0..1 each).
func coverageExtensions(c *Cursor, typ string, aws bool) {
	one := func(url string) *Cursor {
		exts := c.Extension(url)
		if len(exts) > 1 && !aws {
			exts[1].Errorf(fhir.CodeStructure, "the extension %s may occur only once", url)
		}
		if len(exts) == 0 {
			return nil
		}
		return exts[0]
	}
	need := func(e *Cursor, url, what string) {
		if e == nil {
			personMissing(c, "extension").Errorf(fhir.CodeRequired, "the %s (extension %s) is required for insurance type %s", what, url, typ)
		}
	}

	va := one(coverageExtVersichertenart)
	if va != nil {
		va.ValueCoding(coverageCSVersichertenart, coverageVersichertenart)
	}
	pg := one(coverageExtPersonengruppe)
	if pg != nil {
		pg.ValueCoding(coverageCSPersonengruppe, coveragePersonengruppe)
	}
	dmp := one(coverageExtDMP)
	if dmp != nil {
		// Checked here for every Coverage: the profile tables hold version 1.03 of the key table
		// (fhir/kbv/validate leaves its finding out), the eGK the version in force.
		dmp.ValueCoding(coverageCSDMP, coverageDMPCodes(c.Now()))
	}
	wop := one(coverageExtWOP)
	if wop != nil && !aws {
		wop.ValueCoding(coverageCSWOP, coverageWOP)
	}
	if pickFOR(c, "KBV_PR_FOR_Coverage") {
		// The invariants of KBV_PR_FOR_Coverage (until the profile tables cover KBV FOR).
		if coverageWithCardData[typ] {
			need(va, coverageExtVersichertenart, "Versichertenart")
			need(pg, coverageExtPersonengruppe, "besondere Personengruppe")
			need(dmp, coverageExtDMP, "DMP-Kennzeichen")
		}
		if typ == "GKV" {
			need(wop, coverageExtWOP, "Wohnortprinzip (WOP)")
		}
	}

	if z := one(coverageExtZuzahlung); z != nil {
		coverageZuzahlung(z)
	}
	if r := one(coverageExtRuhend); r != nil {
		coverageRuhend(r)
	}
	if k := one(coverageExtKostenerst); k != nil {
		for _, sub := range []string{"aerztlicheVersorgung", "zahnaerztlicheVersorgung", "stationaererBereich", "veranlassteLeistungen"} {
			for _, e := range k.Extension(sub) {
				coverageBoolean(e)
			}
		}
	}
	if e := one(coverageExtEinlesedatum); e != nil {
		v := e.One("valueDateTime")
		if !v.Exists() {
			e.Errorf(fhir.CodeRequired, "the card reading date needs a valueDateTime")
		} else {
			v.NotFuture(false)
		}
	}
	if o := one(coverageExtOnline); o != nil {
		coverageOnlineCheck(o)
	}
	urls := []string{coverageExtVersionVSDM, coverageExtGenerationEGK}
	if !aws {
		urls = append(urls, coverageExtSKT)
	}
	for _, url := range urls {
		if e := one(url); e != nil {
			if v := e.One("valueString"); !v.Exists() {
				e.Errorf(fhir.CodeRequired, "the extension %s needs a valueString", url)
			} else {
				v.NotEmpty()
			}
		}
	}
}

// pickFOR reports whether the resource claims the KBV form profile name in meta.profile.
func pickFOR(c *Cursor, name string) bool {
	for _, p := range c.rep.declared(c) {
		if canon, _, _ := strings.Cut(p, "|"); canon == kbvSD+name {
			return true
		}
	}
	return false
}

// coverageZuzahlung: status (exempt from co-payment: true/false) required, gueltigBis (a date) only
// for an exemption.
func coverageZuzahlung(z *Cursor) {
	st := z.Extension("status")
	if len(st) == 0 {
		personMissing(z, "extension").Errorf(fhir.CodeRequired, "the co-payment status needs its sub-extension status (valueBoolean)")
	}
	if len(st) > 1 {
		st[1].Errorf(fhir.CodeStructure, "the co-payment status may be given only once")
	}
	// The exemption's end is only checked against a well-formed status.
	known, exempt := false, false
	for _, s := range st {
		if coverageBoolean(s) {
			known, exempt = true, s.One("valueBoolean").Value() == "true"
		}
	}
	for _, g := range z.Extension("gueltigBis") {
		v := g.One("valueDate")
		if !v.Exists() {
			g.Errorf(fhir.CodeRequired, "gueltigBis needs a valueDate")
			continue
		}
		v.Date(true)
		if known && !exempt {
			g.Errorf(fhir.CodeInvariant, "the validity of a co-payment exemption (gueltigBis) is only given when status is true")
		}
	}
}

// coverageRuhend: art (1 vollständig, 2 eingeschränkt) and dauer (a period with start) required.
func coverageRuhend(r *Cursor) {
	art, dauer := r.Extension("art"), r.Extension("dauer")
	if len(art) == 0 || len(dauer) == 0 {
		personMissing(r, "extension").Errorf(fhir.CodeRequired, "a suspended entitlement needs its sub-extensions art and dauer")
	}
	for _, a := range art {
		v := a.One("valueCoding")
		if !v.Exists() {
			a.Errorf(fhir.CodeRequired, "art needs a valueCoding")
			continue
		}
		code := v.One("code")
		switch {
		case !code.Exists():
			code.Errorf(fhir.CodeRequired, "the kind of suspension is required: 1 (complete) or 2 (restricted)")
		case !coverageRuhendArt[code.Value()]:
			code.Errorf(fhir.CodeValue, "the kind of suspension is 1 (complete) or 2 (restricted), not %q", code.Value())
		}
	}
	for _, d := range dauer {
		p := d.One("valuePeriod")
		if !p.Exists() {
			d.Errorf(fhir.CodeRequired, "dauer needs a valuePeriod")
			continue
		}
		p.Require("start")
		p.Period()
	}
}

// coverageOnlineCheck: timestamp and result (1–6) of the online check of the eGK.
func coverageOnlineCheck(o *Cursor) {
	ts, res := o.Extension("timestamp"), o.Extension("ergebnis")
	if len(ts) == 0 || len(res) == 0 {
		personMissing(o, "extension").Errorf(fhir.CodeRequired, "the online check of the eGK needs its sub-extensions timestamp and ergebnis")
	}
	for _, t := range ts {
		if v := t.One("valueDateTime"); !v.Exists() {
			t.Errorf(fhir.CodeRequired, "timestamp needs a valueDateTime")
		} else {
			v.NotFuture(false)
		}
	}
	for _, r := range res {
		valueCode(r, coverageOnlineErgebnis, "ergebnis needs a valueCode", "the result of the online check is 1 to 6, not %q")
	}
}

// valueCode checks an extension's valueCode: present (else missing is reported) and in set (else
// wrong, a format with the code's %q).
func valueCode(e *Cursor, set CodeSet, missing, wrong string) {
	switch v := e.One("valueCode"); {
	case !v.Exists():
		e.Errorf(fhir.CodeRequired, "%s", missing)
	case !set[v.Value()]:
		v.Errorf(fhir.CodeValue, wrong, v.Value())
	}
}

// coverageBoolean checks that an extension carries a valueBoolean true or false, and reports
// whether it does.
func coverageBoolean(e *Cursor) bool {
	v := e.One("valueBoolean")
	switch {
	case !v.Exists():
		e.Errorf(fhir.CodeRequired, "the extension needs a valueBoolean")
	case v.Value() != "true" && v.Value() != "false":
		v.Errorf(fhir.CodeValue, "a boolean is true or false")
	default:
		return true
	}
	return false
}
