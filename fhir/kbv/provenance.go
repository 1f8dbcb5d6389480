package kbv

import "github.com/redclone/red/fhir"

// Provenance: KBV_PR_AW_Provenienz, who recorded which entries of the patient file; RED uses it
// to assign entries to users and user groups.

func init() { register("Provenance", provenance) }

const dataOperation = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"

// dataOperations is the HL7 v3 DataOperation code system, the usual source of activity codes.
var dataOperations = codes("OPERATE", "CREATE", "DELETE", "EXECUTE", "READ", "UPDATE", "APPEND", "MODIFYSTATUS",
	"ABORT", "ACTIVATE", "CANCEL", "COMPLETE", "HOLD", "JUMP", "NULLIFY", "OBSOLETE", "REACTIVATE", "RELEASE",
	"RESUME", "SUSPEND")

func provenance(c *Cursor) {
	// FHIR core: target and recorded are required, an agent names who, a signature its type,
	// time and signer.
	c.Require("target", "recorded")
	notFuture(c.One("recorded"), false)
	for _, agent := range c.All("agent") {
		agent.Require("who")
	}
	for _, coding := range firstChild(c, "activity").All("coding") {
		if code := coding.One("code"); coding.One("system").Value() == dataOperation && code.Exists() && !dataOperations[code.Value()] {
			code.Errorf(fhir.CodeValue, "code %q is not in %s", code.Value(), dataOperation)
		}
	}
	for _, sig := range c.All("signature") {
		sig.Require("type", "when", "who")
		notFuture(sig.One("when"), false)
		if sig.Count("data") > 0 && sig.Count("sigFormat") == 0 {
			sig.Warnf(fhir.CodeRequired, "a signature with data should say its format (sigFormat)")
		}
	}
	if name, foreign := pickProfile(c, "KBV_PR_AW_Provenienz"); foreign || name == "" {
		for _, t := range c.All("target") {
			refTo(t)
		}
	}
}
