package kbv

// Provenance: KBV_PR_AW_Provenienz, who recorded which entries of the patient file; RED uses it
// to assign entries to users and user groups.

func init() { register("Provenance", provenance) }

const dataOperation = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"

// dataOperations is the HL7 v3 DataOperation code system, the usual source of activity codes.
var dataOperations = codes("OPERATE", "CREATE", "DELETE", "EXECUTE", "READ", "UPDATE", "APPEND", "MODIFYSTATUS",
	"ABORT", "ACTIVATE", "CANCEL", "COMPLETE", "HOLD", "JUMP", "NULLIFY", "OBSOLETE", "REACTIVATE", "RELEASE",
	"RESUME", "SUSPEND")

func provenance(c *Cursor) {
	_, foreign := pickProfile(c, "KBV_PR_AW_Provenienz")
	c.Require("target", "recorded")
	for _, t := range c.All("target") {
		refTo(t)
	}
	notFuture(c.One("recorded"), false)
	if foreign {
		return
	}

	c.Forbid("occurredPeriod", "occurredDateTime", "policy", "location", "reason", "entity")
	c.Require("activity")
	if act := c.One("activity"); act.Exists() {
		act.Require("coding")
		coding := act.One("coding")
		if coding.Exists() {
			coding.Require("system", "code")
			if coding.One("system").Value() == dataOperation {
				coding.Coding(dataOperation, dataOperations)
			}
		}
	}

	if agent := c.One("agent"); agent.Exists() {
		agent.Forbid("type")
		agent.Require("who")
		refTo(agent.One("who"), "PractitionerRole", "Practitioner")
		refTo(agent.One("onBehalfOf"), "PractitionerRole", "Organization")
		for _, role := range agent.All("role") {
			role.Require("coding")
			if coding := role.One("coding"); coding.Exists() {
				coding.Require("system", "code")
			}
		}
	}

	for _, sig := range c.All("signature") {
		sig.Require("type", "when", "who")
		notFuture(sig.One("when"), false)
		refTo(sig.One("who"))
		if sig.Count("data") > 0 {
			sig.Require("sigFormat")
		}
	}
}
