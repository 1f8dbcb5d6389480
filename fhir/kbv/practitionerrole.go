package kbv

import (
	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
)

// PractitionerRole: KBV_PR_AW_BehandelnderFunktion, a practitioner's role at a practice site or in
// an ASV team (and, by resource type, KBV_PR_FOR_PractitionerRole of ASV prescriptions).

func init() { register("PractitionerRole", practitionerRole) }

// practitionerRoleASVTeam is the NamingSystem of the ASV-Teamnummer.
const practitionerRoleASVTeam = "http://fhir.de/NamingSystem/asv/teamnummer"

func practitionerRole(c *Cursor) {
	aws := c.rep.profiled
	if !aws {
		c.Forbid("identifier", "active", "period", "code", "specialty", "location", "healthcareService",
			"telecom", "availableTime", "notAvailable", "availabilityExceptions", "endpoint")
	}

	// FHIR core: a role of someone at somewhere.
	p := c.One("practitioner")
	if !p.Exists() && !aws {
		p.Errorf(fhir.CodeRequired, "the practitioner is required")
	}
	personReference(p, "Practitioner")

	org := c.One("organization")
	if !org.Exists() {
		if !aws {
			org.Errorf(fhir.CodeRequired, "the practice site (organization) or ASV team is required")
		}
		return
	}
	hasRef, hasID := org.Count("reference") > 0, org.Count("identifier") > 0
	if !aws {
		// KBV_PR_AW_BehandelnderFunktion's invariant AWS-1 and its organization, for a role the
		// profile tables did not check.
		org.Forbid("type", "display")
		switch {
		case hasRef && hasID:
			org.Errorf(fhir.CodeInvariant, "the organization is either a reference to the practice site or the ASV-Teamnummer, not both (AWS-1)")
		case !hasRef && !hasID:
			org.Errorf(fhir.CodeInvariant, "the organization needs a reference to the practice site or the ASV-Teamnummer (AWS-1)")
		case hasRef:
			personReference(org, "Organization")
		}
	}
	if hasID && !hasRef {
		id := org.One("identifier")
		sys, val := id.One("system"), id.One("value")
		if !aws {
			id.Forbid("use", "type", "period", "assigner")
			switch {
			case !sys.Exists():
				sys.Errorf(fhir.CodeRequired, "the ASV-Teamnummer needs the system %s", practitionerRoleASVTeam)
			case sys.Value() != practitionerRoleASVTeam:
				sys.Errorf(fhir.CodeValue, "an ASV team is identified by its ASV-Teamnummer, system %s", practitionerRoleASVTeam)
			}
			if !val.Exists() {
				val.Errorf(fhir.CodeRequired, "the ASV-Teamnummer is required")
			}
		}
		if val.Exists() {
			if err := ident.Check(practitionerRoleASVTeam, val.Value()); err != nil {
				val.Number(err)
			}
		}
	}
}
