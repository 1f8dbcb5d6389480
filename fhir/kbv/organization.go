package kbv

import (
	"strings"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
)

// Organization: KBV_PR_AW_Betriebsstaette (the practice site) and the e-prescription's
// KBV_PR_FOR_Organization (the prescribing site). An Organization that declares the profile
// KBV_PR_AW_Organisation (any other organisation: health insurance, hospital, …) gets the
// lighter rules of that profile.

func init() { register("Organization", organization) }

const (
	organizationExtHierarchie = "https://fhir.kbv.de/StructureDefinition/KBV_EX_AW_Betriebsstaette_Hierarchie"
	organizationProfileOther  = "https://fhir.kbv.de/StructureDefinition/KBV_PR_AW_Organisation"

	// organizationMaxName is the KBV limit for the name of the practice site.
	organizationMaxName = 60
)

var (
	// organizationIDKinds: BSNR and IK (AWS), KZV-Abrechnungsnummer and Standortnummer (the
	// e-prescription's dentists and hospitals), Telematik-ID.
	organizationIDKinds = []personIDKind{
		{name: "BSNR", typeSystem: personV2IDType, typeCode: "BSNR", systems: personBSNRSystems, check: ident.BSNR},
		{name: "IK", typeSystem: personV2IDType, typeCode: "XX", systems: personIKSystems, check: ident.IK},
		{name: "KZV-Abrechnungsnummer", typeSystem: personDeIDType, typeCode: "KZVA", systems: personKZVASystems, check: ident.Systems[personKZVASystems[0]]},
		{name: "Standortnummer", typeSystem: personKBVIDType, typeCode: "KSN", systems: personKSNSystems, check: ident.Systems[personKSNSystems[0]]},
		{name: "Telematik-ID", typeSystem: personV2IDType, typeCode: "PRN", systems: personTISystems},
	}

	// KBV_VS_AW_Betriebsstaetten_Hierarchie: main site or secondary site.
	organizationHierarchie = codes("BSNR", "NBSNR")
)

// An Organization checked by the profile tables (c.rep.profiled: KBV_PR_AW_Betriebsstaette,
// KBV_PR_AW_Organisation, the e-prescription's KBV_PR_FOR_Organization) gets here what the
// profiles cannot state: identifier numbers (format and check digit), the identifier types a
// site carries, plausibility (a phone number, the lengths the profile does not state) and the
// details of contact points and addresses. One its profile tables do not hold (or none) gets
// also the structure of a practice site here: the site hierarchy, its numbers, name and one
// address.
func organization(c *Cursor) {
	profiled := c.rep.profiled
	if !profiled {
		c.Forbid("active", "type", "alias", "partOf", "contact", "endpoint")
	}
	if organizationIsOther(c) {
		organizationOther(c, profiled)
		return
	}
	// KBV_PR_FOR_Organization states the name's limit and the phone number itself (the tables
	// hold the versions in use).
	forOrg := pickFOR(c, "KBV_PR_FOR_Organization")

	ids := c.All("identifier")
	kinds := personIdentifiers(ids, organizationIDKinds, true)
	if !profiled {
		organizationSite(c, ids, kinds)
	}

	organizationName(c, profiled, !forOrg)

	phone := false
	for _, t := range c.All("telecom") {
		if !profiled {
			t.Forbid("period")
		}
		personTelecom(t)
		phone = phone || t.One("system").Value() == "phone"
	}
	if !phone && !forOrg {
		personMissing(c, "telecom").Warnf(fhir.CodeRequired, "a practice site should have a phone number")
	}

	addrs := c.All("address")
	if !profiled {
		if len(addrs) == 0 {
			personMissing(c, "address").Errorf(fhir.CodeRequired, "the practice site's address is required")
		}
		c.Max("address", 1)
	}
	for _, a := range addrs {
		personAddress(a)
	}
}

// organizationSite checks, for a practice site its profile tables do not hold, what
// KBV_PR_AW_Betriebsstaette and KBV_PR_FOR_Organization state: the site hierarchy at most once and
// BSNR or NBSNR, one BSNR at most (and one with a hierarchy), and a number besides a Telematik-ID.
func organizationSite(c *Cursor, ids []*Cursor, kinds []*personIDKind) {
	hier := c.Extension(organizationExtHierarchie)
	if len(hier) > 1 {
		hier[1].Errorf(fhir.CodeStructure, "the extension %s may occur only once", organizationExtHierarchie)
	}
	for _, h := range hier {
		valueCode(h, organizationHierarchie, "the site hierarchy needs a valueCode: BSNR or NBSNR", "the site hierarchy is BSNR (main site) or NBSNR (secondary site), not %q")
	}

	bsnr, numbered := -1, false
	for i, k := range kinds {
		if k == nil {
			continue
		}
		switch k.name {
		case "BSNR":
			if bsnr >= 0 {
				ids[i].Errorf(fhir.CodeStructure, "a practice site has only one BSNR")
			} else {
				bsnr = i
			}
			numbered = true
		case "IK", "KZV-Abrechnungsnummer", "Standortnummer":
			numbered = true
		}
	}
	switch {
	case len(ids) == 0:
		personMissing(c, "identifier").Errorf(fhir.CodeRequired, "a practice site needs its BSNR (or IK, KZV-Abrechnungsnummer or Standortnummer)")
	case len(hier) > 0 && bsnr < 0:
		personMissing(c, "identifier").Errorf(fhir.CodeRequired, "a practice site (main or secondary) needs its BSNR")
	case !numbered:
		personMissing(c, "identifier").Errorf(fhir.CodeRequired, "a practice site needs a BSNR, IK, KZV-Abrechnungsnummer or Standortnummer besides a Telematik-ID")
	}
}

// organizationName: the name is required (where no profile said so) and at most 60 characters
// (limit: where the profile does not state it; KBV_PR_AW_Betriebsstaette and _Organisation do not).
func organizationName(c *Cursor, profiled, limit bool) {
	name := c.One("name")
	if !name.Exists() {
		if !profiled {
			name.Errorf(fhir.CodeRequired, "the name is required")
		}
		return
	}
	name.NotEmpty()
	if limit {
		name.MaxLen(organizationMaxName)
	}
}

// organizationIsOther reports whether the Organization declares KBV_PR_AW_Organisation, or has no
// obvious profile (meta.profile names none, and fhir/kbv/validate found none for it): it then gets
// the lighter rules every organisation meets.
func organizationIsOther(c *Cursor) bool {
	for _, v := range c.rep.declared() {
		if v == organizationProfileOther || strings.HasPrefix(v, organizationProfileOther+"|") || v == Generic {
			return true
		}
	}
	return false
}

// organizationOther checks KBV_PR_AW_Organisation: a name, identifiers with a type and a valid
// value for their system, addresses and contact points like everyone's.
func organizationOther(c *Cursor, profiled bool) {
	organizationName(c, profiled, true)
	for _, id := range c.All("identifier") {
		if !profiled {
			id.Forbid("period")
		}
		if id.Count("type") == 0 {
			// The profile's identifier slicing is open (by type.coding.code): an identifier without
			// type belongs to no slice, and nobody can tell which number it is.
			personMissing(id, "type").Warnf(fhir.CodeRequired, "the identifier should have a type: without it, it is no IK, BSNR, VKNR or KZV-Abrechnungsnummer")
		}
		if !id.One("value").Exists() {
			personMissing(id, "value").Errorf(fhir.CodeRequired, "the identifier's value is required")
			continue
		}
		id.Identifier()
	}
	for _, a := range c.All("address") {
		personAddress(a)
	}
	for _, t := range c.All("telecom") {
		personTelecom(t)
	}
}
