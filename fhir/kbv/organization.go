package kbv

import (
	"strings"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
)

// Organization: KBV_PR_AW_Betriebsstaette (the practice site; by resource type also the
// KBV_PR_FOR_Organization of the e-prescription). An Organization that declares the profile
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

// An Organization checked against KBV_PR_AW_Betriebsstaette or _Organisation by the profile tables
// (c.rep.profiled) gets here what the tables do not cover: the identifier and address slices of
// KBV Basis (not among the definitions read), and plausibility. Any other Organization (the
// e-prescription's KBV_PR_FOR_Organization, a profile the tables do not hold, or none) gets all
// rules here, until the profile tables cover those profiles.
func organization(c *Cursor) {
	aws := c.rep.profiled
	if !aws {
		c.Forbid("active", "type", "alias", "partOf", "contact", "endpoint")
	}
	if organizationIsOther(c) {
		organizationOther(c, aws)
		return
	}

	// KBV_PR_AW_Betriebsstaette requires the site hierarchy once (the slice betriebsstaetten-
	// hierarchie, 1..1; until the profile tables check it: they lose the slices of an element its
	// differential does not state); other profiles do not, but a site should say it.
	hier := c.Extension(organizationExtHierarchie)
	switch {
	case len(hier) == 0 && aws:
		personMissing(c, "extension").Errorf(fhir.CodeRequired, "a practice site says whether it is the main site (BSNR) or a secondary site (NBSNR): the extension %s is required", organizationExtHierarchie)
	case len(hier) == 0:
		personMissing(c, "extension").Warnf(fhir.CodeRequired, "a practice site should say whether it is the main site (BSNR) or a secondary site (NBSNR), extension %s", organizationExtHierarchie)
	case len(hier) > 1:
		hier[1].Errorf(fhir.CodeStructure, "the extension %s may occur only once", organizationExtHierarchie)
	}
	if !aws {
		for _, h := range hier {
			valueCode(h, organizationHierarchie, "the site hierarchy needs a valueCode: BSNR or NBSNR", "the site hierarchy is BSNR (main site) or NBSNR (secondary site), not %q")
		}
	}

	ids := c.All("identifier")
	kinds := personIdentifiers(ids, organizationIDKinds, true)
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
		case "KZV-Abrechnungsnummer":
			if aws {
				// KBV_PR_AW_Betriebsstaette excludes it (the slice KZV-Abrechnungsnummer, 0..0;
				// until the profile tables cover its discriminator, stated in KBV Basis).
				ids[i].Errorf(fhir.CodeStructure, "a KZV-Abrechnungsnummer is not allowed in KBV_PR_AW_Betriebsstaette")
			}
			numbered = true
		case "IK", "Standortnummer":
			numbered = true
		}
	}
	switch {
	case len(ids) == 0:
		if !aws {
			personMissing(c, "identifier").Errorf(fhir.CodeRequired, "a practice site needs its BSNR (or IK, KZV-Abrechnungsnummer or Standortnummer)")
		}
	case (len(hier) > 0 || aws) && bsnr < 0:
		// KBV_PR_AW_Betriebsstaette: the slice Betriebsstaettennummer is 1..1 (until the profile
		// tables cover its discriminator, stated in KBV Basis).
		personMissing(c, "identifier").Errorf(fhir.CodeRequired, "a practice site (main or secondary) needs its BSNR")
	case !numbered:
		personMissing(c, "identifier").Errorf(fhir.CodeRequired, "a practice site needs a BSNR, IK, KZV-Abrechnungsnummer or Standortnummer besides a Telematik-ID")
	}

	organizationName(c, aws)

	phone := false
	for _, t := range c.All("telecom") {
		if !aws {
			t.Forbid("period")
		}
		personTelecom(t)
		phone = phone || t.One("system").Value() == "phone"
	}
	if !phone {
		personMissing(c, "telecom").Warnf(fhir.CodeRequired, "a practice site should have a phone number")
	}

	addrs := c.All("address")
	if !aws {
		if len(addrs) == 0 {
			personMissing(c, "address").Errorf(fhir.CodeRequired, "the practice site's address is required")
		}
		c.Max("address", 1)
	}
	for _, a := range addrs {
		personAddress(a)
	}
}

// organizationName: the name is required and at most 60 characters.
func organizationName(c *Cursor, aws bool) {
	name := c.One("name")
	if !name.Exists() {
		if !aws {
			name.Errorf(fhir.CodeRequired, "the name is required")
		}
		return
	}
	name.NotEmpty()
	name.MaxLen(organizationMaxName)
}

// organizationIsOther reports whether the Organization declares KBV_PR_AW_Organisation, or has no
// obvious profile (meta.profile names none, and fhir/kbv/validate found none for it): it then gets
// the lighter rules every organisation meets.
func organizationIsOther(c *Cursor) bool {
	for _, v := range c.rep.declared(c) {
		if v == organizationProfileOther || strings.HasPrefix(v, organizationProfileOther+"|") || v == Generic {
			return true
		}
	}
	return false
}

// organizationOther checks KBV_PR_AW_Organisation: a name, identifiers with a type and a valid
// value for their system, addresses and contact points like everyone's.
func organizationOther(c *Cursor, aws bool) {
	organizationName(c, aws)
	for _, id := range c.All("identifier") {
		if !aws {
			id.Forbid("period")
		}
		if id.Count("type") == 0 {
			// The slices of KBV_PR_AW_Organisation require it (until the profile tables cover
			// their discriminator, stated in KBV Basis).
			personMissing(id, "type").Errorf(fhir.CodeRequired, "the identifier's type is required")
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
