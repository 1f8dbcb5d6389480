package kbv

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
)

// Coverage: KBV_PR_AW_Krankenversicherungsverhaeltnis and the e-prescription's
// KBV_PR_FOR_Coverage (the insurance data read from the eGK or typed in from the card).

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

// A Coverage checked by the profile tables (c.rep.profiled: KBV_PR_AW_Krankenversicherungsverhaeltnis,
// KBV_PR_FOR_Coverage) gets here what the profiles cannot state: the codes of the key tables the
// tables do not hold (versicherungsart-de-basis, Versichertenart, besondere Personengruppe, the
// DMP key table in force, WOP for KBV_PR_FOR_Coverage, the online check's result), identifier
// numbers, dates, consistency and plausibility. One its profile tables do not hold gets also the
// structure of KBV_PR_FOR_Coverage here. The card data KBV_PR_FOR_Coverage requires of insured
// persons of GKV, BG, SKT, UK and PKV are its invariants; KBV_PR_AW_Krankenversicherungsverhaeltnis
// does not require them (0..1 each), and neither requires the WOP.
func coverage(c *Cursor) {
	profiled := c.rep.profiled
	// KBV_PR_FOR_Coverage binds the type to a value set the tables hold and states the payor's
	// name's limit (the tables hold the versions in use).
	forCov := pickFOR(c, "KBV_PR_FOR_Coverage")
	if !profiled {
		c.Forbid("policyHolder", "subscriberId", "dependent", "relationship", "class", "order", "network", "costToBeneficiary", "subrogation", "contract")
	}

	// FHIR core: status, beneficiary and payor are required.
	status := c.One("status")
	switch {
	case !status.Exists():
		status.Errorf(fhir.CodeRequired, "the status is required (active or cancelled)")
	case profiled && !coverageStatus[status.Value()]:
		status.Errorf(fhir.CodeValue, "%q is not a status of an insurance relationship; allowed are %s", status.Value(), orList(sortedCodes(coverageStatus)))
	case !profiled && status.Value() != "active" && status.Value() != "cancelled":
		status.Errorf(fhir.CodeValue, "an insurance relationship is active or cancelled, not %q", status.Value())
	}

	typ := coverageType(c, profiled, forCov)

	if !profiled {
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
			if profiled {
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

	coveragePayor(c, typ, profiled, forCov)
	coverageExtensions(c, profiled, forCov)
}

// coverageStatus is FHIR core's FinancialResourceStatusCodes.
var coverageStatus = codes("active", "cancelled", "draft", "entered-in-error")

// coverageType checks Coverage.type (one coding from versicherungsart-de-basis or, for SKT and
// UK, KBV_CS_FOR_Payor_Type_KBV) and returns the code when it is valid. The codes are checked here
// but for KBV_PR_FOR_Coverage, whose value set the tables hold (versicherungsart-de-basis, which
// KBV_PR_AW_Krankenversicherungsverhaeltnis binds, they do not); the rest only where the tables did
// not check the resource.
func coverageType(c *Cursor, profiled, forCov bool) string {
	t := c.One("type")
	if !t.Exists() {
		// KBV_PR_AW_Krankenversicherungsverhaeltnis leaves the type optional (0..1, as FHIR
		// core); without it red cannot tell GKV from PKV: plausibility.
		t.Warnf(fhir.CodeRequired, "the insurance type should be given (GKV, PKV, BG, SEL, …)")
		return ""
	}
	cds := t.All("coding")
	if len(cds) == 0 {
		if !profiled {
			personMissing(t, "coding").Errorf(fhir.CodeRequired, "the insurance type needs a coding from %s", coverageVersicherungsart)
		}
		return ""
	}
	if !profiled {
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
		if !profiled {
			sys.Errorf(fhir.CodeValue, "the insurance type is coded with %s (or %s for SKT and UK)", coverageVersicherungsart, coveragePayorTypeKBV)
		}
		return ""
	case !set[code.Value()]:
		if !forCov {
			code.Errorf(fhir.CodeValue, "code %q is not in %s", code.Value(), sys.Value())
		}
		return ""
	}
	return code.Value()
}

// coveragePayor checks the payor (Kostenträger): one, with the IK of the health insurance and its
// name (at most 45 characters: KBV_PR_FOR_Coverage states it, the AWS profile does not).
func coveragePayor(c *Cursor, typ string, profiled, forCov bool) {
	payors := c.All("payor")
	if len(payors) == 0 {
		personMissing(c, "payor").Errorf(fhir.CodeRequired, "the payor (Kostenträger) is required")
		return
	}
	if len(payors) > 1 && !profiled {
		payors[1].Errorf(fhir.CodeStructure, "an insurance relationship has one payor, found %d", len(payors))
	}
	p := payors[0]
	name := p.One("display")
	if !name.Exists() {
		if !profiled {
			name.Errorf(fhir.CodeRequired, "the payor's name (Kostenträgername) is required")
		}
	} else {
		name.NotEmpty()
		if !forCov {
			name.MaxLen(coverageMaxPayorName)
		}
	}
	id := p.One("identifier")
	if !id.Exists() {
		if typ != "SEL" && !profiled {
			id.Errorf(fhir.CodeRequired, "the payor's IK (Institutionskennzeichen) is required")
		}
		if p.Count("reference") > 0 {
			personReference(p, "Organization", "Patient", "RelatedPerson")
		}
		return
	}
	coverageIK(id, "payor's IK", profiled)
	alt := id.Extension(coverageExtAlternativeIK)
	if len(alt) > 1 && !profiled {
		alt[1].Errorf(fhir.CodeStructure, "the alternative IK may be given only once")
	}
	for _, e := range alt {
		v := e.One("valueIdentifier")
		if !v.Exists() {
			if !profiled {
				e.Errorf(fhir.CodeRequired, "the alternative IK extension needs a valueIdentifier")
			}
			continue
		}
		coverageIK(v, "alternative IK", profiled)
	}
}

// coverageIK checks an Identifier that must be an IK: its system (where the profile tables did not
// check it: identifier-iknr fixes it) and nine digits with check digit.
func coverageIK(id *Cursor, what string, profiled bool) {
	sys, val := id.One("system"), id.One("value")
	switch {
	case profiled:
	case !sys.Exists():
		sys.Errorf(fhir.CodeRequired, "the %s needs the system %s", what, personIKSystems[0])
	case !slices.Contains(personIKSystems, sys.Value()):
		sys.Errorf(fhir.CodeValue, "the %s has the system %s", what, personIKSystems[0])
	}
	if !val.Exists() {
		if !profiled {
			val.Errorf(fhir.CodeRequired, "the %s's value is required", what)
		}
		return
	}
	if err := ident.IK(val.Value()); err != nil {
		val.Number(err)
	}
}

// coverageExtensions checks the GKV extensions: each at most once (where no profile said so) and
// the values from their KBV key tables that the profile tables do not check: the key tables of
// Versichertenart and besondere Personengruppe are not among the value sets read, the DMP key
// table in force is newer than theirs, and the WOP's value set is checked for
// KBV_PR_AW_Krankenversicherungsverhaeltnis only (KBV_PR_FOR_Coverage's package does not hold it).
func coverageExtensions(c *Cursor, profiled, forCov bool) {
	one := func(url string) *Cursor {
		exts := c.Extension(url)
		if len(exts) > 1 && !profiled {
			exts[1].Errorf(fhir.CodeStructure, "the extension %s may occur only once", url)
		}
		if len(exts) == 0 {
			return nil
		}
		return exts[0]
	}

	if va := one(coverageExtVersichertenart); va != nil {
		va.ValueCoding(coverageCSVersichertenart, coverageVersichertenart)
	}
	if pg := one(coverageExtPersonengruppe); pg != nil {
		pg.ValueCoding(coverageCSPersonengruppe, coveragePersonengruppe)
	}
	if dmp := one(coverageExtDMP); dmp != nil {
		// Checked here for every Coverage: the profile tables hold version 1.03 of the key table
		// (fhir/kbv/validate leaves its finding out), the eGK the version in force.
		dmp.ValueCoding(coverageCSDMP, coverageDMPCodes(c.Now()))
	}
	if wop := one(coverageExtWOP); wop != nil && (!profiled || forCov) {
		wop.ValueCoding(coverageCSWOP, coverageWOP)
	}

	if z := one(coverageExtZuzahlung); z != nil {
		coverageZuzahlung(z, profiled)
	}
	if r := one(coverageExtRuhend); r != nil {
		coverageRuhend(r, profiled)
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
		coverageOnlineCheck(o, profiled)
	}
	urls := []string{coverageExtVersionVSDM, coverageExtGenerationEGK}
	if !profiled {
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
	for _, p := range c.rep.declared() {
		if canon, _, _ := strings.Cut(p, "|"); canon == kbvSD+name {
			return true
		}
	}
	return false
}

// coverageZuzahlung: status (exempt from co-payment: true/false) required (where no profile said
// so: the extension's slice status is 1..1), gueltigBis (a date) only for an exemption.
func coverageZuzahlung(z *Cursor, profiled bool) {
	st := z.Extension("status")
	if !profiled {
		if len(st) == 0 {
			personMissing(z, "extension").Errorf(fhir.CodeRequired, "the co-payment status needs its sub-extension status (valueBoolean)")
		}
		if len(st) > 1 {
			st[1].Errorf(fhir.CodeStructure, "the co-payment status may be given only once")
		}
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
// The extension's definition states all but the periods' order (the slices art and dauer 1..1,
// dauer's start 1..1, art's code 1..1 and its values, ruhend-1, a warning): where no profile said
// so, they are checked here.
func coverageRuhend(r *Cursor, profiled bool) {
	art, dauer := r.Extension("art"), r.Extension("dauer")
	if !profiled && (len(art) == 0 || len(dauer) == 0) {
		personMissing(r, "extension").Errorf(fhir.CodeRequired, "a suspended entitlement needs its sub-extensions art and dauer")
	}
	for _, a := range art {
		v := a.One("valueCoding")
		if !v.Exists() {
			a.Errorf(fhir.CodeRequired, "art needs a valueCoding")
			continue
		}
		if profiled {
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
		if !profiled {
			p.Require("start")
		}
		p.Period()
	}
}

// coverageOnlineCheck: timestamp and result (1–6) of the online check of the eGK. The extension's
// definition requires the sub-extensions (where no profile said so, they are checked here); the
// result's codes are not bound.
func coverageOnlineCheck(o *Cursor, profiled bool) {
	ts, res := o.Extension("timestamp"), o.Extension("ergebnis")
	if !profiled && (len(ts) == 0 || len(res) == 0) {
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
