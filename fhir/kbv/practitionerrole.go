package kbv

import "github.com/redclone/red/fhir/ident"

// PractitionerRole: KBV_PR_AW_BehandelnderFunktion, a practitioner's role at a practice site or in
// an ASV team (and, by resource type, KBV_PR_FOR_PractitionerRole of ASV prescriptions).
//
// The profile tables state the role's structure: the practitioner and the organization (a
// reference to the practice site or the ASV-Teamnummer, invariant AWS-1), their target types and
// the elements the profiles exclude. The rules here add the ASV-Teamnummer's format, which
// KBV_PR_AW_BehandelnderFunktion does not state.

func init() { register("PractitionerRole", practitionerRole) }

// practitionerRoleASVTeam is the NamingSystem of the ASV-Teamnummer.
const practitionerRoleASVTeam = "http://fhir.de/NamingSystem/asv/teamnummer"

func practitionerRole(c *Cursor) {
	org := c.One("organization")
	if org.Count("reference") > 0 {
		return
	}
	if val := org.One("identifier").One("value"); val.Exists() {
		if err := ident.Check(practitionerRoleASVTeam, val.Value()); err != nil {
			val.Number(err)
		}
	}
}
