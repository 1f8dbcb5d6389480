package sample

import (
	"slices"
	"strings"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/profile"
)

// What FHIR R4 core says and the tables of fhir/profile do not hold (they carry the profiles'
// differentials only): the types of elements a profile requires without restating their type,
// the elements core requires itself, and what content a data type needs to be more than empty.
// Only what generating the KBV profiles' instances needs is here.

// primitiveTypes are FHIR's primitive types: their instances carry a value attribute.
var primitiveTypes = map[string]bool{
	"boolean": true, "integer": true, "string": true, "decimal": true, "uri": true, "url": true,
	"canonical": true, "base64Binary": true, "instant": true, "date": true, "dateTime": true,
	"time": true, "code": true, "oid": true, "id": true, "markdown": true, "unsignedInt": true,
	"positiveInt": true, "uuid": true,
}

// isQuantity reports whether typ is Quantity or one of its specialisations.
func isQuantity(typ string) bool {
	switch typ {
	case "Quantity", "SimpleQuantity", "Age", "Count", "Distance", "Duration", "MoneyQuantity":
		return true
	}
	return false
}

// isContainer reports whether an element holds a resource (Bundle.entry.resource, contained).
func isContainer(tag, typ string) bool {
	return typ == "Resource" || tag == "resource" || tag == "contained"
}

// backbone marks in coreTypes an element whose type is its own (BackboneElement): its key for
// the elements inside is its path.
const backbone = "."

// coreType is the FHIR type of the element name inside an element whose type (or, for a
// backbone element, path) is key, "" when this table does not know it.
func coreType(key, name string) string {
	t := coreTypes[key+"."+name]
	if t == "" && fhir.IsResourceType(key) {
		t = resourceElements[name]
	}
	if t == "" {
		t = byName[name]
	}
	if t == "" {
		if prefix, ok := strings.CutSuffix(name, "[x]"); ok {
			t = choices[prefix]
		}
	}
	if t == backbone {
		return key + "." + name
	}
	return t
}

// shapeType tells a complex type from the children the definitions give it, "" when they do not
// tell.
func shapeType(ds []*node) string {
	has := map[string]bool{}
	for _, n := range ds {
		for _, c := range n.children {
			has[c.name] = true
		}
	}
	switch {
	case has["coding"]:
		return "CodeableConcept"
	case has["reference"]:
		return "Reference"
	case has["system"] && has["code"] && !has["value"]:
		return "Coding"
	case has["value"] && has["currency"]:
		return "Money"
	case has["value"] && (has["unit"] || has["code"]):
		return "Quantity"
	case has["numerator"] || has["denominator"]:
		return "Ratio"
	case has["low"] || has["high"]:
		return "Range"
	case has["start"] || has["end"]:
		return "Period"
	case has["family"] || has["given"]:
		return "HumanName"
	case has["line"] || has["city"] || has["postalCode"]:
		return "Address"
	case has["contentType"] || has["data"]:
		return "Attachment"
	case has["system"] && has["value"] || has["assigner"]:
		return "Identifier"
	}
	return ""
}

// resourceElements are the elements every resource has, by name.
var resourceElements = map[string]string{
	"id": "id", "meta": "Meta", "implicitRules": "uri", "language": "code", "text": "Narrative",
	"contained": "Resource", "identifier": "Identifier", "status": "code", "subject": "Reference",
	"patient": "Reference", "encounter": "Reference", "code": "CodeableConcept",
	"category": "CodeableConcept", "type": "CodeableConcept", "note": "Annotation",
	"basedOn": "Reference", "partOf": "Reference", "requester": "Reference", "recorder": "Reference",
	"asserter": "Reference", "author": "Reference", "reasonCode": "CodeableConcept",
	"reasonReference": "Reference", "bodySite": "CodeableConcept", "authoredOn": "dateTime",
	"date": "dateTime", "created": "dateTime", "insurer": "Reference", "provider": "Reference",
	"location": "Reference", "performer": "Reference", "name": "string", "title": "string",
	"description": "markdown", "url": "uri", "version": "string", "publisher": "string",
	"telecom": "ContactPoint", "address": "Address", "period": "Period", "active": "boolean",
	"priority": "code", "intent": "code", "gender": "code", "birthDate": "date",
}

// byName are types an element has wherever it occurs.
var byName = map[string]string{
	"extension": "Extension", "modifierExtension": "Extension", "identifier": "Identifier",
	"coding": "Coding", "telecom": "ContactPoint", "note": "Annotation", "period": "Period",
	"reference": "string", "display": "string", "system": "uri", "version": "string",
	"url": "uri", "status": "code", "use": "code",
}

// choices are the type a choice element takes when no definition states its types (the first
// or most common one of FHIR R4).
var choices = map[string]string{
	"value": "string", "effective": "dateTime", "onset": "dateTime", "abatement": "dateTime",
	"occurrence": "dateTime", "performed": "dateTime", "deceased": "boolean",
	"multipleBirth": "boolean", "medication": "CodeableConcept", "item": "CodeableConcept",
	"product": "CodeableConcept", "serviced": "date", "timing": "dateTime", "bounds": "Period",
	"allowed": "string", "used": "string", "dose": "Quantity", "rate": "Quantity",
	"asNeeded": "boolean", "quantity": "Quantity", "subject": "CodeableConcept",
	"definition": "canonical", "location": "Reference", "diagnosis": "CodeableConcept",
	"procedure": "CodeableConcept", "doseNumber": "positiveInt", "seriesDoses": "positiveInt",
	"reported": "boolean", "source": "Reference", "target": "Reference", "occurred": "dateTime",
	"topic": "CodeableConcept", "author": "string", "legallyBinding": "Attachment",
	"detail": "Quantity",
}

// coreTypes are element types by the key of their parent's type (a data type's name, a backbone
// element's path) and their name.
var coreTypes = map[string]string{
	// data types
	"Coding.system": "uri", "Coding.version": "string", "Coding.code": "code", "Coding.display": "string",
	"Coding.userSelected":    "boolean",
	"CodeableConcept.coding": "Coding", "CodeableConcept.text": "string",
	"Identifier.use": "code", "Identifier.type": "CodeableConcept", "Identifier.system": "uri",
	"Identifier.value": "string", "Identifier.period": "Period", "Identifier.assigner": "Reference",
	"Reference.reference": "string", "Reference.type": "uri", "Reference.identifier": "Identifier",
	"Reference.display": "string",
	"Quantity.value":    "decimal", "Quantity.comparator": "code", "Quantity.unit": "string",
	"Quantity.system": "uri", "Quantity.code": "code",
	"SimpleQuantity.value": "decimal", "SimpleQuantity.unit": "string", "SimpleQuantity.system": "uri",
	"SimpleQuantity.code": "code",
	"Duration.value":      "decimal", "Duration.unit": "string", "Duration.system": "uri", "Duration.code": "code",
	"Age.value": "decimal", "Age.unit": "string", "Age.system": "uri", "Age.code": "code",
	"Money.value": "decimal", "Money.currency": "code",
	"Period.start": "dateTime", "Period.end": "dateTime",
	"Range.low": "SimpleQuantity", "Range.high": "SimpleQuantity",
	"Ratio.numerator": "Quantity", "Ratio.denominator": "Quantity",
	"HumanName.use": "code", "HumanName.text": "string", "HumanName.family": "string",
	"HumanName.given": "string", "HumanName.prefix": "string", "HumanName.suffix": "string",
	"Address.use": "code", "Address.type": "code", "Address.text": "string", "Address.line": "string",
	"Address.city": "string", "Address.district": "string", "Address.state": "string",
	"Address.postalCode": "string", "Address.country": "string",
	"ContactPoint.system": "code", "ContactPoint.value": "string", "ContactPoint.use": "code",
	"ContactPoint.rank":      "positiveInt",
	"Attachment.contentType": "code", "Attachment.language": "code", "Attachment.data": "base64Binary",
	"Attachment.url": "url", "Attachment.size": "unsignedInt", "Attachment.hash": "base64Binary",
	"Attachment.title": "string", "Attachment.creation": "dateTime",
	"Narrative.status": "code", "Narrative.div": "xhtml",
	"Meta.versionId": "id", "Meta.lastUpdated": "instant", "Meta.source": "uri",
	"Meta.profile": "canonical", "Meta.security": "Coding", "Meta.tag": "Coding",
	"Annotation.text": "markdown", "Annotation.time": "dateTime",
	"Signature.type": "Coding", "Signature.when": "instant", "Signature.who": "Reference",
	"Signature.onBehalfOf": "Reference", "Signature.targetFormat": "code", "Signature.sigFormat": "code",
	"Signature.data": "base64Binary",
	"Timing.event":   "dateTime", "Timing.repeat": backbone, "Timing.code": "CodeableConcept",
	"Timing.repeat.count": "positiveInt", "Timing.repeat.duration": "decimal",
	"Timing.repeat.durationUnit": "code", "Timing.repeat.frequency": "positiveInt",
	"Timing.repeat.period": "decimal", "Timing.repeat.periodUnit": "code", "Timing.repeat.dayOfWeek": "code",
	"Timing.repeat.timeOfDay": "time", "Timing.repeat.when": "code", "Timing.repeat.offset": "unsignedInt",
	"Dosage.sequence": "integer", "Dosage.text": "string", "Dosage.patientInstruction": "string",
	"Dosage.timing": "Timing", "Dosage.site": "CodeableConcept", "Dosage.route": "CodeableConcept",
	"Dosage.method": "CodeableConcept", "Dosage.doseAndRate": backbone,
	"Dosage.maxDosePerPeriod": "Ratio", "Dosage.maxDosePerAdministration": "SimpleQuantity",
	"Dosage.doseAndRate.type": "CodeableConcept",
	"ContactDetail.name":      "string", "ContactDetail.telecom": "ContactPoint",
	"Extension.url": "uri",

	// resources: their elements whose name does not tell their type (resourceElements, byName)
	"Bundle.type": "code", "Bundle.timestamp": "instant", "Bundle.total": "unsignedInt",
	"Bundle.entry": backbone, "Bundle.signature": "Signature", "Bundle.link": backbone,
	"Bundle.entry.fullUrl": "uri", "Bundle.entry.resource": "Resource", "Bundle.entry.request": backbone,
	"Bundle.entry.request.method": "code", "Bundle.entry.request.url": "uri",
	"Patient.name": "HumanName", "Patient.deceased[x]": "dateTime", "Patient.maritalStatus": "CodeableConcept",
	"Patient.contact": backbone, "Patient.communication": backbone, "Patient.generalPractitioner": "Reference",
	"Patient.managingOrganization": "Reference", "Patient.photo": "Attachment",
	"Patient.contact.relationship": "CodeableConcept", "Patient.contact.name": "HumanName",
	"Patient.contact.gender": "code", "Patient.contact.organization": "Reference",
	"Patient.communication.language": "CodeableConcept", "Patient.communication.preferred": "boolean",
	"Person.name": "HumanName", "Person.managingOrganization": "Reference", "Person.link": backbone,
	"Person.link.target": "Reference",
	"Practitioner.name":  "HumanName", "Practitioner.qualification": backbone,
	"Practitioner.qualification.code": "CodeableConcept", "Practitioner.qualification.issuer": "Reference",
	"PractitionerRole.practitioner": "Reference", "PractitionerRole.organization": "Reference",
	"PractitionerRole.specialty": "CodeableConcept", "PractitionerRole.location": "Reference",
	"Organization.alias": "string", "Organization.contact": backbone,
	"RelatedPerson.relationship": "CodeableConcept", "RelatedPerson.name": "HumanName",
	"Location.alias": "string", "Location.mode": "code", "Location.physicalType": "CodeableConcept",
	"Location.managingOrganization": "Reference", "Location.position": backbone,
	"Location.operationalStatus": "Coding", "Location.address": "Address",
	"Location.position.longitude": "decimal", "Location.position.latitude": "decimal",
	"Coverage.type": "CodeableConcept", "Coverage.subscriber": "Reference", "Coverage.subscriberId": "string",
	"Coverage.beneficiary": "Reference", "Coverage.payor": "Reference", "Coverage.class": backbone,
	"Coverage.relationship": "CodeableConcept", "Coverage.class.value": "string",
	"Coverage.class.name": "string",
	"Observation.issued":  "instant", "Observation.interpretation": "CodeableConcept",
	"Observation.method": "CodeableConcept", "Observation.component": backbone,
	"Observation.dataAbsentReason": "CodeableConcept", "Observation.hasMember": "Reference",
	"Observation.derivedFrom": "Reference", "Observation.device": "Reference",
	"Observation.referenceRange": backbone, "Observation.component.code": "CodeableConcept",
	"Observation.component.interpretation":   "CodeableConcept",
	"Observation.component.dataAbsentReason": "CodeableConcept",
	"Condition.clinicalStatus":               "CodeableConcept", "Condition.verificationStatus": "CodeableConcept",
	"Condition.severity": "CodeableConcept", "Condition.recordedDate": "dateTime",
	"Condition.stage": backbone, "Condition.evidence": backbone,
	"Encounter.class": "Coding", "Encounter.serviceType": "CodeableConcept",
	"Encounter.priority": "CodeableConcept", "Encounter.participant": backbone,
	"Encounter.participant.type": "CodeableConcept", "Encounter.participant.individual": "Reference",
	"Encounter.diagnosis": backbone, "Encounter.diagnosis.condition": "Reference",
	"Encounter.diagnosis.use": "CodeableConcept", "Encounter.diagnosis.rank": "positiveInt",
	"Encounter.hospitalization": backbone, "Encounter.location": backbone,
	"Encounter.location.location": "Reference", "Encounter.serviceProvider": "Reference",
	"Encounter.length": "Duration", "Encounter.appointment": "Reference",
	"Encounter.episodeOfCare": "Reference", "Encounter.account": "Reference",
	"Encounter.statusHistory": backbone, "Encounter.classHistory": backbone,
	"Procedure.performer": backbone, "Procedure.performer.function": "CodeableConcept",
	"Procedure.performer.actor": "Reference", "Procedure.performer.onBehalfOf": "Reference",
	"Procedure.outcome": "CodeableConcept", "Procedure.report": "Reference",
	"Procedure.complication": "CodeableConcept", "Procedure.followUp": "CodeableConcept",
	"Procedure.statusReason": "CodeableConcept", "Procedure.focalDevice": backbone,
	"Procedure.usedReference": "Reference", "Procedure.usedCode": "CodeableConcept",
	"ServiceRequest.orderDetail": "CodeableConcept", "ServiceRequest.performerType": "CodeableConcept",
	"ServiceRequest.locationCode": "CodeableConcept", "ServiceRequest.locationReference": "Reference",
	"ServiceRequest.insurance": "Reference", "ServiceRequest.supportingInfo": "Reference",
	"ServiceRequest.specimen": "Reference", "ServiceRequest.patientInstruction": "string",
	"ServiceRequest.requisition": "Identifier", "ServiceRequest.replaces": "Reference",
	"ServiceRequest.doNotPerform":         "boolean",
	"MedicationRequest.dosageInstruction": "Dosage", "MedicationRequest.dispenseRequest": backbone,
	"MedicationRequest.substitution": backbone, "MedicationRequest.insurance": "Reference",
	"MedicationRequest.courseOfTherapyType": "CodeableConcept",
	"MedicationRequest.statusReason":        "CodeableConcept", "MedicationRequest.doNotPerform": "boolean",
	"MedicationRequest.supportingInformation":                  "Reference",
	"MedicationRequest.dispenseRequest.quantity":               "SimpleQuantity",
	"MedicationRequest.dispenseRequest.numberOfRepeatsAllowed": "unsignedInt",
	"MedicationRequest.dispenseRequest.validityPeriod":         "Period",
	"MedicationRequest.dispenseRequest.expectedSupplyDuration": "Duration",
	"MedicationStatement.dateAsserted":                         "dateTime", "MedicationStatement.informationSource": "Reference",
	"MedicationStatement.derivedFrom": "Reference", "MedicationStatement.dosage": "Dosage",
	"MedicationStatement.context": "Reference",
	"Medication.manufacturer":     "Reference", "Medication.form": "CodeableConcept", "Medication.amount": "Ratio",
	"Medication.ingredient": backbone, "Medication.batch": backbone,
	"Medication.ingredient.isActive": "boolean", "Medication.ingredient.strength": "Ratio",
	"Medication.batch.lotNumber": "string", "Medication.batch.expirationDate": "dateTime",
	"Immunization.vaccineCode": "CodeableConcept", "Immunization.recorded": "dateTime",
	"Immunization.primarySource": "boolean", "Immunization.reportOrigin": "CodeableConcept",
	"Immunization.manufacturer": "Reference", "Immunization.lotNumber": "string",
	"Immunization.expirationDate": "date", "Immunization.site": "CodeableConcept",
	"Immunization.route": "CodeableConcept", "Immunization.doseQuantity": "SimpleQuantity",
	"Immunization.performer": backbone, "Immunization.performer.actor": "Reference",
	"Immunization.performer.function": "CodeableConcept", "Immunization.protocolApplied": backbone,
	"Immunization.protocolApplied.series": "string", "Immunization.protocolApplied.authority": "Reference",
	"Immunization.protocolApplied.targetDisease": "CodeableConcept", "Immunization.isSubpotent": "boolean",
	"AllergyIntolerance.clinicalStatus": "CodeableConcept", "AllergyIntolerance.verificationStatus": "CodeableConcept",
	"AllergyIntolerance.type": "code", "AllergyIntolerance.category": "code",
	"AllergyIntolerance.criticality": "code", "AllergyIntolerance.recordedDate": "dateTime",
	"AllergyIntolerance.lastOccurrence": "dateTime", "AllergyIntolerance.reaction": backbone,
	"AllergyIntolerance.reaction.substance":     "CodeableConcept",
	"AllergyIntolerance.reaction.manifestation": "CodeableConcept",
	"AllergyIntolerance.reaction.description":   "string", "AllergyIntolerance.reaction.onset": "dateTime",
	"AllergyIntolerance.reaction.severity": "code",
	"Appointment.cancelationReason":        "CodeableConcept", "Appointment.serviceCategory": "CodeableConcept",
	"Appointment.serviceType": "CodeableConcept", "Appointment.specialty": "CodeableConcept",
	"Appointment.appointmentType": "CodeableConcept", "Appointment.priority": "unsignedInt",
	"Appointment.description": "string", "Appointment.start": "instant", "Appointment.end": "instant",
	"Appointment.minutesDuration": "positiveInt", "Appointment.slot": "Reference",
	"Appointment.comment": "string", "Appointment.participant": backbone,
	"Appointment.participant.type": "CodeableConcept", "Appointment.participant.actor": "Reference",
	"Appointment.participant.required": "code", "Appointment.participant.status": "code",
	"Appointment.requestedPeriod": "Period", "Appointment.supportingInformation": "Reference",
	"AuditEvent.type": "Coding", "AuditEvent.subtype": "Coding", "AuditEvent.action": "code",
	"AuditEvent.recorded": "instant", "AuditEvent.outcome": "code", "AuditEvent.outcomeDesc": "string",
	"AuditEvent.purposeOfEvent": "CodeableConcept", "AuditEvent.agent": backbone,
	"AuditEvent.source": backbone, "AuditEvent.entity": backbone,
	"AuditEvent.agent.type": "CodeableConcept", "AuditEvent.agent.role": "CodeableConcept",
	"AuditEvent.agent.who": "Reference", "AuditEvent.agent.name": "string",
	"AuditEvent.agent.requestor": "boolean", "AuditEvent.agent.policy": "uri",
	"AuditEvent.source.site": "string", "AuditEvent.source.observer": "Reference",
	"AuditEvent.source.type": "Coding", "AuditEvent.entity.what": "Reference",
	"AuditEvent.entity.type": "Coding", "AuditEvent.entity.role": "Coding",
	"AuditEvent.entity.name": "string", "AuditEvent.entity.description": "string",
	"AuditEvent.entity.detail": backbone, "AuditEvent.entity.detail.type": "string",
	"Claim.subType": "CodeableConcept", "Claim.use": "code", "Claim.billablePeriod": "Period",
	"Claim.enterer": "Reference", "Claim.priority": "CodeableConcept", "Claim.related": backbone,
	"Claim.referral": "Reference", "Claim.facility": "Reference", "Claim.careTeam": backbone,
	"Claim.supportingInfo": backbone, "Claim.diagnosis": backbone, "Claim.procedure": backbone,
	"Claim.insurance": backbone, "Claim.accident": backbone, "Claim.item": backbone,
	"Claim.total": "Money", "Claim.payee": backbone, "Claim.prescription": "Reference",
	"Claim.related.claim": "Reference", "Claim.related.relationship": "CodeableConcept",
	"Claim.related.reference": "Identifier",
	"Claim.careTeam.sequence": "positiveInt", "Claim.careTeam.provider": "Reference",
	"Claim.careTeam.role": "CodeableConcept", "Claim.careTeam.qualification": "CodeableConcept",
	"Claim.supportingInfo.sequence": "positiveInt", "Claim.supportingInfo.category": "CodeableConcept",
	"Claim.supportingInfo.code": "CodeableConcept", "Claim.supportingInfo.timing[x]": "date",
	"Claim.supportingInfo.reason": "CodeableConcept",
	"Claim.diagnosis.sequence":    "positiveInt", "Claim.diagnosis.type": "CodeableConcept",
	"Claim.procedure.sequence": "positiveInt", "Claim.procedure.date": "dateTime",
	"Claim.insurance.sequence": "positiveInt", "Claim.insurance.focal": "boolean",
	"Claim.insurance.coverage": "Reference", "Claim.insurance.preAuthRef": "string",
	"Claim.accident.date": "date", "Claim.accident.type": "CodeableConcept",
	"Claim.item.sequence": "positiveInt", "Claim.item.careTeamSequence": "positiveInt",
	"Claim.item.diagnosisSequence": "positiveInt", "Claim.item.informationSequence": "positiveInt",
	"Claim.item.category": "CodeableConcept", "Claim.item.productOrService": "CodeableConcept",
	"Claim.item.modifier": "CodeableConcept", "Claim.item.serviced[x]": "date",
	"Claim.item.quantity": "SimpleQuantity", "Claim.item.unitPrice": "Money", "Claim.item.factor": "decimal",
	"Claim.item.net": "Money", "Claim.item.udi": "Reference", "Claim.item.encounter": "Reference",
	"Claim.item.detail": backbone, "Claim.item.detail.sequence": "positiveInt",
	"Claim.item.detail.productOrService": "CodeableConcept", "Claim.item.detail.quantity": "SimpleQuantity",
	"Claim.item.detail.unitPrice": "Money", "Claim.item.detail.net": "Money",
	"Composition.confidentiality": "code", "Composition.attester": backbone,
	"Composition.custodian": "Reference", "Composition.relatesTo": backbone, "Composition.event": backbone,
	"Composition.section": backbone, "Composition.section.title": "string",
	"Composition.section.code": "CodeableConcept", "Composition.section.author": "Reference",
	"Composition.section.focus": "Reference", "Composition.section.text": "Narrative",
	"Composition.section.mode": "code", "Composition.section.entry": "Reference",
	"Composition.section.section": backbone,
	"Consent.scope":               "CodeableConcept", "Consent.dateTime": "dateTime", "Consent.organization": "Reference",
	"Consent.policy": backbone, "Consent.policy.authority": "uri", "Consent.policy.uri": "uri",
	"Consent.policyRule": "CodeableConcept", "Consent.verification": backbone,
	"Consent.provision": backbone, "Consent.provision.type": "code", "Consent.provision.period": "Period",
	"Consent.provision.actor": backbone, "Consent.provision.actor.role": "CodeableConcept",
	"Consent.provision.actor.reference": "Reference", "Consent.provision.action": "CodeableConcept",
	"Consent.provision.code": "CodeableConcept", "Consent.provision.provision": backbone,
	"Contract.issued": "dateTime", "Contract.applies": "Period", "Contract.subType": "CodeableConcept",
	"Contract.term": backbone, "Contract.signer": backbone, "Contract.legalState": "CodeableConcept",
	"Contract.scope": "CodeableConcept", "Contract.domain": "Reference", "Contract.authority": "Reference",
	"Contract.supportingInfo": "Reference", "Contract.subtitle": "string", "Contract.alias": "string",
	"Contract.term.issued": "dateTime", "Contract.term.applies": "Period", "Contract.term.type": "CodeableConcept",
	"Contract.term.subType": "CodeableConcept", "Contract.term.text": "string", "Contract.term.offer": backbone,
	"Contract.term.offer.party": backbone, "Contract.term.offer.party.reference": "Reference",
	"Contract.term.offer.party.role": "CodeableConcept", "Contract.term.offer.topic": "Reference",
	"Contract.term.offer.type": "CodeableConcept", "Contract.term.offer.decision": "CodeableConcept",
	"Contract.term.offer.text": "string", "Contract.term.asset": backbone, "Contract.term.action": backbone,
	"Contract.signer.type": "Coding", "Contract.signer.party": "Reference", "Contract.signer.signature": "Signature",
	"CoverageEligibilityRequest.purpose": "code", "CoverageEligibilityRequest.enterer": "Reference",
	"CoverageEligibilityRequest.facility": "Reference", "CoverageEligibilityRequest.supportingInfo": backbone,
	"CoverageEligibilityRequest.insurance": backbone, "CoverageEligibilityRequest.item": backbone,
	"CoverageEligibilityRequest.priority":                    "CodeableConcept",
	"CoverageEligibilityRequest.supportingInfo.sequence":     "positiveInt",
	"CoverageEligibilityRequest.supportingInfo.information":  "Reference",
	"CoverageEligibilityRequest.supportingInfo.appliesToAll": "boolean",
	"CoverageEligibilityRequest.insurance.focal":             "boolean",
	"CoverageEligibilityRequest.insurance.coverage":          "Reference",
	"CoverageEligibilityRequest.item.supportingInfoSequence": "positiveInt",
	"CoverageEligibilityRequest.item.category":               "CodeableConcept",
	"CoverageEligibilityRequest.item.productOrService":       "CodeableConcept",
	"CoverageEligibilityRequest.item.modifier":               "CodeableConcept",
	"CoverageEligibilityRequest.item.quantity":               "SimpleQuantity",
	"CoverageEligibilityRequest.item.unitPrice":              "Money", "CoverageEligibilityRequest.item.facility": "Reference",
	"CoverageEligibilityRequest.item.diagnosis": backbone, "CoverageEligibilityRequest.item.detail": "Reference",
	"CoverageEligibilityResponse.purpose": "code", "CoverageEligibilityResponse.requestor": "Reference",
	"CoverageEligibilityResponse.request": "Reference", "CoverageEligibilityResponse.outcome": "code",
	"CoverageEligibilityResponse.disposition": "string", "CoverageEligibilityResponse.insurance": backbone,
	"CoverageEligibilityResponse.preAuthRef": "string", "CoverageEligibilityResponse.form": "CodeableConcept",
	"CoverageEligibilityResponse.error": backbone, "CoverageEligibilityResponse.error.code": "CodeableConcept",
	"CoverageEligibilityResponse.insurance.coverage":                     "Reference",
	"CoverageEligibilityResponse.insurance.inforce":                      "boolean",
	"CoverageEligibilityResponse.insurance.benefitPeriod":                "Period",
	"CoverageEligibilityResponse.insurance.item":                         backbone,
	"CoverageEligibilityResponse.insurance.item.category":                "CodeableConcept",
	"CoverageEligibilityResponse.insurance.item.productOrService":        "CodeableConcept",
	"CoverageEligibilityResponse.insurance.item.modifier":                "CodeableConcept",
	"CoverageEligibilityResponse.insurance.item.excluded":                "boolean",
	"CoverageEligibilityResponse.insurance.item.name":                    "string",
	"CoverageEligibilityResponse.insurance.item.description":             "string",
	"CoverageEligibilityResponse.insurance.item.network":                 "CodeableConcept",
	"CoverageEligibilityResponse.insurance.item.unit":                    "CodeableConcept",
	"CoverageEligibilityResponse.insurance.item.term":                    "CodeableConcept",
	"CoverageEligibilityResponse.insurance.item.benefit":                 backbone,
	"CoverageEligibilityResponse.insurance.item.benefit.type":            "CodeableConcept",
	"CoverageEligibilityResponse.insurance.item.authorizationRequired":   "boolean",
	"CoverageEligibilityResponse.insurance.item.authorizationSupporting": "CodeableConcept",
	"CoverageEligibilityResponse.insurance.item.authorizationUrl":        "uri",
	"Device.udiCarrier": backbone, "Device.statusReason": "CodeableConcept",
	"Device.distinctIdentifier": "string", "Device.manufacturer": "string",
	"Device.manufactureDate": "dateTime", "Device.expirationDate": "dateTime", "Device.lotNumber": "string",
	"Device.serialNumber": "string", "Device.deviceName": backbone, "Device.modelNumber": "string",
	"Device.partNumber": "string", "Device.specialization": backbone, "Device.version": backbone,
	"Device.property": backbone, "Device.owner": "Reference", "Device.contact": "ContactPoint",
	"Device.safety": "CodeableConcept", "Device.parent": "Reference", "Device.definition": "Reference",
	"Device.deviceName.name": "string", "Device.deviceName.type": "code",
	"Device.version.type": "CodeableConcept", "Device.version.component": "Identifier",
	"Device.version.value":    "string",
	"DiagnosticReport.issued": "instant", "DiagnosticReport.resultsInterpreter": "Reference",
	"DiagnosticReport.specimen": "Reference", "DiagnosticReport.result": "Reference",
	"DiagnosticReport.conclusion": "string", "DiagnosticReport.conclusionCode": "CodeableConcept",
	"DiagnosticReport.presentedForm":     "Attachment",
	"DocumentReference.masterIdentifier": "Identifier", "DocumentReference.docStatus": "code",
	"DocumentReference.date": "instant", "DocumentReference.authenticator": "Reference",
	"DocumentReference.custodian": "Reference", "DocumentReference.relatesTo": backbone,
	"DocumentReference.description": "string", "DocumentReference.securityLabel": "CodeableConcept",
	"DocumentReference.content": backbone, "DocumentReference.context": backbone,
	"DocumentReference.relatesTo.code": "code", "DocumentReference.relatesTo.target": "Reference",
	"DocumentReference.content.attachment": "Attachment", "DocumentReference.content.format": "Coding",
	"DocumentReference.context.encounter": "Reference", "DocumentReference.context.event": "CodeableConcept",
	"DocumentReference.context.period": "Period", "DocumentReference.context.related": "Reference",
	"DocumentReference.context.facilityType":    "CodeableConcept",
	"DocumentReference.context.practiceSetting": "CodeableConcept",
	"Provenance.target":                         "Reference", "Provenance.recorded": "instant", "Provenance.policy": "uri",
	"Provenance.reason": "CodeableConcept", "Provenance.activity": "CodeableConcept",
	"Provenance.agent": backbone, "Provenance.entity": backbone, "Provenance.signature": "Signature",
	"Provenance.agent.type": "CodeableConcept", "Provenance.agent.role": "CodeableConcept",
	"Provenance.agent.who": "Reference", "Provenance.agent.onBehalfOf": "Reference",
	"Provenance.entity.role": "code", "Provenance.entity.what": "Reference",
	"SupplyRequest.quantity": "Quantity", "SupplyRequest.parameter": backbone,
	"SupplyRequest.supplier": "Reference", "SupplyRequest.deliverFrom": "Reference",
	"SupplyRequest.deliverTo":     "Reference",
	"ActivityDefinition.subtitle": "string", "ActivityDefinition.experimental": "boolean",
	"ActivityDefinition.contact": "ContactDetail", "ActivityDefinition.purpose": "markdown",
	"ActivityDefinition.usage": "string", "ActivityDefinition.copyright": "markdown",
	"ActivityDefinition.approvalDate": "date", "ActivityDefinition.lastReviewDate": "date",
	"ActivityDefinition.effectivePeriod": "Period", "ActivityDefinition.topic": "CodeableConcept",
	"ActivityDefinition.library": "canonical", "ActivityDefinition.kind": "code",
	"ActivityDefinition.profile": "canonical", "ActivityDefinition.doNotPerform": "boolean",
	"ActivityDefinition.participant": backbone, "ActivityDefinition.participant.type": "code",
	"ActivityDefinition.participant.role": "CodeableConcept", "ActivityDefinition.quantity": "SimpleQuantity",
	"ActivityDefinition.dosage": "Dosage", "ActivityDefinition.dynamicValue": backbone,
	"ActivityDefinition.jurisdiction": "CodeableConcept",
	"PlanDefinition.subtitle":         "string", "PlanDefinition.experimental": "boolean",
	"PlanDefinition.contact": "ContactDetail", "PlanDefinition.purpose": "markdown",
	"PlanDefinition.usage": "string", "PlanDefinition.library": "canonical", "PlanDefinition.goal": backbone,
	"PlanDefinition.action": backbone, "PlanDefinition.action.prefix": "string",
	"PlanDefinition.action.title": "string", "PlanDefinition.action.description": "string",
	"PlanDefinition.action.textEquivalent": "string", "PlanDefinition.action.priority": "code",
	"PlanDefinition.action.code": "CodeableConcept", "PlanDefinition.action.reason": "CodeableConcept",
	"PlanDefinition.action.type": "CodeableConcept", "PlanDefinition.action.action": backbone,
	"PlanDefinition.action.groupingBehavior": "code", "PlanDefinition.action.selectionBehavior": "code",
	"PlanDefinition.action.requiredBehavior": "code", "PlanDefinition.action.precheckBehavior": "code",
	"PlanDefinition.action.cardinalityBehavior": "code", "PlanDefinition.action.relatedAction": backbone,
	"PlanDefinition.action.participant": backbone, "PlanDefinition.action.condition": backbone,
}

// coreRequired are the elements FHIR core requires (minimum cardinality 1), by the key of their
// parent's type as in coreTypes: they are generated whether or not a profile repeats it.
var coreRequired = map[string][]string{
	"Bundle": {"type"}, "Bundle.entry.request": {"method", "url"}, "Bundle.link": {"relation", "url"},
	"Signature":   {"type", "when", "who"},
	"Narrative":   {"status", "div"},
	"Observation": {"status", "code"}, "Observation.component": {"code"},
	"Encounter": {"status", "class"}, "Encounter.location": {"location"},
	"Encounter.diagnosis": {"condition"}, "Encounter.statusHistory": {"status", "period"},
	"Condition": {"subject"},
	"Procedure": {"status", "subject"}, "Procedure.performer": {"actor"},
	"ServiceRequest":                 {"status", "intent", "subject"},
	"MedicationRequest":              {"status", "intent", "medication[x]", "subject"},
	"MedicationRequest.substitution": {"allowed[x]"},
	"MedicationStatement":            {"status", "medication[x]", "subject"},
	"Medication.ingredient":          {"item[x]"},
	"Immunization":                   {"status", "vaccineCode", "patient", "occurrence[x]"},
	"Immunization.performer":         {"actor"}, "Immunization.protocolApplied": {"doseNumber[x]"},
	"AllergyIntolerance": {"patient"}, "AllergyIntolerance.reaction": {"manifestation"},
	"Appointment": {"status", "participant"}, "Appointment.participant": {"status"},
	"AuditEvent": {"type", "recorded", "agent", "source"}, "AuditEvent.agent": {"requestor"},
	"AuditEvent.source": {"observer"}, "AuditEvent.entity.detail": {"type", "value[x]"},
	"Claim":           {"status", "type", "use", "patient", "created", "provider", "priority", "insurance"},
	"Claim.insurance": {"sequence", "focal", "coverage"}, "Claim.item": {"sequence", "productOrService"},
	"Claim.item.detail": {"sequence", "productOrService"}, "Claim.supportingInfo": {"sequence", "category"},
	"Claim.diagnosis": {"sequence", "diagnosis[x]"}, "Claim.careTeam": {"sequence", "provider"},
	"Claim.procedure": {"sequence", "procedure[x]"}, "Claim.accident": {"date"}, "Claim.payee": {"type"},
	"Claim.related": {},
	"Composition":   {"status", "type", "date", "author", "title"}, "Composition.attester": {"mode"},
	"Consent": {"status", "scope", "category"}, "Consent.provision.actor": {"role", "reference"},
	"Consent.verification": {"verified"},
	"Contract.term":        {"offer"}, "Contract.term.offer.party": {"reference", "role"},
	"Contract.signer": {"type", "party", "signature"},
	"Coverage":        {"status", "beneficiary", "payor"}, "Coverage.class": {"type", "value"},
	"CoverageEligibilityRequest":                         {"status", "purpose", "patient", "created", "insurer"},
	"CoverageEligibilityRequest.supportingInfo":          {"sequence", "information"},
	"CoverageEligibilityRequest.insurance":               {"coverage"},
	"CoverageEligibilityResponse":                        {"status", "purpose", "patient", "created", "request", "outcome", "insurer"},
	"CoverageEligibilityResponse.insurance":              {"coverage"},
	"CoverageEligibilityResponse.insurance.item.benefit": {"type"},
	"CoverageEligibilityResponse.error":                  {"code"},
	"DiagnosticReport":                                   {"status", "code"},
	"DocumentReference":                                  {"status", "content"},
	"DocumentReference.content":                          {"attachment"},
	"DocumentReference.relatesTo":                        {"code", "target"},
	"Device.deviceName":                                  {"name", "type"}, "Device.version": {"value"},
	"Location.position":     {"longitude", "latitude"},
	"Patient.communication": {"language"}, "Person.link": {"target"},
	"Practitioner.qualification": {"code"},
	"Provenance":                 {"target", "recorded", "agent"}, "Provenance.agent": {"who"},
	"Provenance.entity":  {"role", "what"},
	"RelatedPerson":      {"patient"},
	"SupplyRequest":      {"item[x]", "quantity"},
	"ActivityDefinition": {"status"}, "ActivityDefinition.participant": {"type"},
	"PlanDefinition": {"status"}, "PlanDefinition.action.participant": {"type"},
}

// content is what an element of a data type gets when nothing else gave it content (FHIR wants
// an element to have a value or children) or none of the elements named here: the first
// alternative whose elements the definitions do not forbid.
var content = map[string][][]string{
	"CodeableConcept": {{"coding"}, {"text"}},
	"Coding":          {{"system", "code"}},
	"Identifier":      {{"system", "value"}, {"value"}},
	"Reference":       {{"reference"}, {"identifier"}, {"display"}},
	"Quantity":        {{"value", "unit"}, {"value"}},
	"SimpleQuantity":  {{"value", "unit"}, {"value"}},
	"Duration":        {{"value", "unit"}, {"value"}},
	"Age":             {{"value", "unit"}, {"value"}},
	"Money":           {{"value", "currency"}},
	"Period":          {{"start"}, {"end"}},
	"Range":           {{"low"}, {"high"}},
	"Ratio":           {{"numerator", "denominator"}},
	"HumanName":       {{"family"}, {"text"}},
	"Address":         {{"city"}, {"text"}},
	"ContactPoint":    {{"system", "value"}},
	"Attachment":      {{"contentType", "data"}, {"url"}},
	"Annotation":      {{"text"}},
	"Timing":          {{"event"}, {"repeat"}},
	"Timing.repeat":   {{"frequency", "period", "periodUnit"}},
	"Dosage":          {{"text"}},
	"Meta":            {{"lastUpdated"}},
	"ContactDetail":   {{"name"}},
}

// coreCode is a code for the code element name inside an element whose type key is key where
// FHIR core binds it to a value set of its own (statuses, genders, …), "" when not known here.
func coreCode(key, name string) string {
	if c := coreCodes[key+"."+name]; c != "" {
		return c
	}
	return coreCodes[name]
}

// coreCodes are codes of FHIR core's required value sets, by element (key.name, as coreTypes) or
// by name alone.
var coreCodes = map[string]string{
	"gender": "female", "Narrative.status": "generated", "HumanName.use": "official",
	"Identifier.use": "official", "ContactPoint.system": "phone", "ContactPoint.use": "work",
	"Address.use": "home", "Address.type": "both", "Quantity.comparator": "<",
	"Timing.repeat.periodUnit": "d", "Timing.repeat.durationUnit": "d",
	"Bundle.type": "collection", "Bundle.entry.request.method": "PUT",
	"ActivityDefinition.status": "active", "ActivityDefinition.participant.type": "practitioner",
	"AllergyIntolerance.type": "allergy", "AllergyIntolerance.category": "food",
	"AllergyIntolerance.criticality": "low", "AllergyIntolerance.reaction.severity": "mild",
	"Appointment.status": "booked", "Appointment.participant.status": "accepted",
	"Appointment.participant.required": "required",
	"AuditEvent.action":                "E", "AuditEvent.outcome": "0",
	"Claim.status": "active", "Claim.use": "claim",
	"Composition.status": "final", "Composition.attester.mode": "legal",
	"Consent.status": "active", "Consent.provision.type": "permit",
	"Contract.status":                   "executed",
	"Coverage.status":                   "active",
	"CoverageEligibilityRequest.status": "active", "CoverageEligibilityRequest.purpose": "benefits",
	"CoverageEligibilityResponse.status": "active", "CoverageEligibilityResponse.purpose": "benefits",
	"CoverageEligibilityResponse.outcome": "complete",
	"Device.status":                       "active", "Device.deviceName.type": "user-friendly-name",
	"DiagnosticReport.status":  "final",
	"DocumentReference.status": "current", "DocumentReference.relatesTo.code": "appends",
	"Encounter.status": "finished", "Encounter.location.status": "completed",
	"Immunization.status": "completed",
	"Location.status":     "active", "Location.mode": "instance",
	"MedicationRequest.status": "active", "MedicationRequest.intent": "order",
	"MedicationStatement.status": "active",
	"Observation.status":         "final",
	"PlanDefinition.status":      "active", "PlanDefinition.action.participant.type": "practitioner",
	"Procedure.status":       "completed",
	"Provenance.entity.role": "source",
	"ServiceRequest.status":  "active", "ServiceRequest.intent": "order", "ServiceRequest.priority": "routine",
	"SupplyRequest.status": "active", "SupplyRequest.priority": "routine",
	"Signature.sigFormat": "application/pkcs7-mime", "Attachment.contentType": "application/pdf",
	"Money.currency": "EUR",
}

// hl7CS is where HL7's terminology publishes the code systems of FHIR core.
const hl7CS = "http://terminology.hl7.org/CodeSystem/"

// coreBindings are codes of the value sets FHIR core binds coded elements to with strength
// required, by element (key.name, as coreTypes).
var coreBindings = map[string]profile.Code{
	"Condition.clinicalStatus":              {System: hl7CS + "condition-clinical", Code: "active"},
	"Condition.verificationStatus":          {System: hl7CS + "condition-ver-status", Code: "confirmed"},
	"AllergyIntolerance.clinicalStatus":     {System: hl7CS + "allergyintolerance-clinical", Code: "active"},
	"AllergyIntolerance.verificationStatus": {System: hl7CS + "allergyintolerance-verification", Code: "confirmed"},
	"Encounter.class":                       {System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "AMB"},
}

// order is the order FHIR R4 gives the elements of the data types, resources and backbone
// elements generated here, by key as in coreTypes; a resource's id, meta, text, contained and
// extensions (an element's extensions) come first.
var order = map[string][]string{}

func init() {
	for key, names := range orders {
		order[key] = strings.Fields(names)
	}
}

var orders = map[string]string{
	// data types
	"Coding":          "system version code display userSelected",
	"CodeableConcept": "coding text",
	"Identifier":      "use type system value period assigner",
	"Reference":       "reference type identifier display",
	"Meta":            "versionId lastUpdated source profile security tag",
	"Narrative":       "status div",
	"Quantity":        "value comparator unit system code",
	"SimpleQuantity":  "value comparator unit system code",
	"Duration":        "value comparator unit system code",
	"Age":             "value comparator unit system code",
	"Money":           "value currency",
	"Period":          "start end",
	"Range":           "low high",
	"Ratio":           "numerator denominator",
	"HumanName":       "use text family given prefix suffix period",
	"Address":         "use type text line city district state postalCode country period",
	"ContactPoint":    "system value use rank period",
	"Attachment":      "contentType language data url size hash title creation",
	"Annotation":      "author[x] time text",
	"Signature":       "type when who onBehalfOf targetFormat sigFormat data",
	"Timing":          "event repeat code",
	"Timing.repeat":   "bounds[x] count countMax duration durationMax durationUnit frequency frequencyMax period periodMax periodUnit dayOfWeek timeOfDay when offset",
	"Dosage":          "sequence text additionalInstruction patientInstruction timing asNeeded[x] site route method doseAndRate maxDosePerPeriod maxDosePerAdministration maxDosePerLifetime",
	"Extension":       "extension value[x]",

	// resources and their backbone elements
	"ActivityDefinition":                         "url identifier version name title subtitle status experimental subject[x] date publisher contact description useContext jurisdiction purpose usage copyright approvalDate lastReviewDate effectivePeriod topic author editor reviewer endorser relatedArtifact library kind profile code intent priority doNotPerform timing[x] location participant product[x] quantity dosage bodySite specimenRequirement observationRequirement observationResultRequirement transform dynamicValue",
	"AllergyIntolerance":                         "identifier clinicalStatus verificationStatus type category criticality code patient encounter onset[x] recordedDate recorder asserter lastOccurrence note reaction",
	"AllergyIntolerance.reaction":                "substance manifestation description onset severity exposureRoute note",
	"Appointment":                                "identifier status cancelationReason serviceCategory serviceType specialty appointmentType reasonCode reasonReference priority description supportingInformation start end minutesDuration slot created comment patientInstruction basedOn participant requestedPeriod",
	"Appointment.participant":                    "type actor required status period",
	"AuditEvent":                                 "type subtype action period recorded outcome outcomeDesc purposeOfEvent agent source entity",
	"AuditEvent.agent":                           "type role who altId name requestor location policy media network purposeOfUse",
	"AuditEvent.source":                          "site observer type",
	"AuditEvent.entity":                          "what type role lifecycle securityLabel name description query detail",
	"AuditEvent.entity.detail":                   "type value[x]",
	"Bundle":                                     "identifier type timestamp total link entry signature",
	"Bundle.entry":                               "link fullUrl resource search request response",
	"Bundle.entry.request":                       "method url ifNoneMatch ifModifiedSince ifMatch ifNoneExist",
	"Claim":                                      "identifier status type subType use patient billablePeriod created enterer insurer provider priority fundsReserve related prescription originalPrescription payee referral facility careTeam supportingInfo diagnosis procedure insurance accident item total",
	"Claim.related":                              "claim relationship reference",
	"Claim.careTeam":                             "sequence provider responsible role qualification",
	"Claim.supportingInfo":                       "sequence category code timing[x] value[x] reason",
	"Claim.diagnosis":                            "sequence diagnosis[x] type onAdmission packageCode",
	"Claim.procedure":                            "sequence type date procedure[x] udi",
	"Claim.insurance":                            "sequence focal identifier coverage businessArrangement preAuthRef claimResponse",
	"Claim.accident":                             "date type location[x]",
	"Claim.item":                                 "sequence careTeamSequence diagnosisSequence procedureSequence informationSequence revenue category productOrService modifier programCode serviced[x] location[x] quantity unitPrice factor net udi bodySite subSite encounter detail",
	"Claim.item.detail":                          "sequence revenue category productOrService modifier programCode quantity unitPrice factor net udi subDetail",
	"Composition":                                "identifier status type category subject encounter date author title confidentiality attester custodian relatesTo event section",
	"Composition.section":                        "title code author focus text mode orderedBy entry emptyReason section",
	"Condition":                                  "identifier clinicalStatus verificationStatus category severity code bodySite subject encounter onset[x] abatement[x] recordedDate recorder asserter stage evidence note",
	"Consent":                                    "identifier status scope category patient dateTime performer organization source[x] policy policyRule verification provision",
	"Consent.provision":                          "type period actor action securityLabel purpose class code dataPeriod data provision",
	"Consent.provision.actor":                    "role reference",
	"Contract":                                   "identifier url version status legalState instantiatesCanonical instantiatesUri contentDerivative issued applies expirationType subject authority domain site name title subtitle alias author scope topic[x] type subType contentDefinition term supportingInfo relevantHistory signer friendly legal rule legallyBinding[x]",
	"Contract.term":                              "identifier issued applies topic[x] type subType text securityLabel offer asset action group",
	"Contract.term.offer":                        "identifier party topic type decision decisionMode answer text linkId securityLabelNumber",
	"Contract.term.offer.party":                  "reference role",
	"Coverage":                                   "identifier status type policyHolder subscriber subscriberId beneficiary dependent relationship period payor class order network costToBeneficiary subrogation contract",
	"Coverage.class":                             "type value name",
	"CoverageEligibilityRequest":                 "identifier status priority purpose patient serviced[x] created enterer provider insurer facility supportingInfo insurance item",
	"CoverageEligibilityRequest.insurance":       "focal coverage businessArrangement",
	"CoverageEligibilityRequest.item":            "supportingInfoSequence category productOrService modifier provider quantity unitPrice facility diagnosis detail",
	"CoverageEligibilityResponse":                "identifier status purpose patient serviced[x] created requestor request outcome disposition insurer insurance preAuthRef form error",
	"CoverageEligibilityResponse.insurance":      "coverage inforce benefitPeriod item",
	"CoverageEligibilityResponse.insurance.item": "category productOrService modifier provider excluded name description network unit term benefit authorizationRequired authorizationSupporting authorizationUrl",
	"CoverageEligibilityResponse.insurance.item.benefit": "type allowed[x] used[x]",
	"Device":                            "identifier definition udiCarrier status statusReason distinctIdentifier manufacturer manufactureDate expirationDate lotNumber serialNumber deviceName modelNumber partNumber type specialization version property patient owner contact location url note safety parent",
	"Device.deviceName":                 "name type",
	"Device.version":                    "type component value",
	"DiagnosticReport":                  "identifier basedOn status category code subject encounter effective[x] issued performer resultsInterpreter specimen result imagingStudy media conclusion conclusionCode presentedForm",
	"DocumentReference":                 "masterIdentifier identifier status docStatus type category subject date author authenticator custodian relatesTo description securityLabel content context",
	"DocumentReference.content":         "attachment format",
	"DocumentReference.context":         "encounter event period facilityType practiceSetting sourcePatientInfo related",
	"Encounter":                         "identifier status statusHistory class classHistory type serviceType priority subject episodeOfCare basedOn participant appointment period length reasonCode reasonReference diagnosis account hospitalization location serviceProvider partOf",
	"Encounter.participant":             "type period individual",
	"Encounter.diagnosis":               "condition use rank",
	"Encounter.location":                "location status physicalType period",
	"Immunization":                      "identifier status statusReason vaccineCode patient encounter occurrence[x] recorded primarySource reportOrigin location manufacturer lotNumber expirationDate site route doseQuantity performer note reasonCode reasonReference isSubpotent subpotentReason education programEligibility fundingSource reaction protocolApplied",
	"Immunization.performer":            "function actor",
	"Immunization.protocolApplied":      "series authority targetDisease doseNumber[x] seriesDoses[x]",
	"Location":                          "identifier status operationalStatus name alias description mode type telecom address physicalType position managingOrganization partOf hoursOfOperation availabilityExceptions endpoint",
	"Medication":                        "identifier code status manufacturer form amount ingredient batch",
	"Medication.ingredient":             "item[x] isActive strength",
	"MedicationRequest":                 "identifier status statusReason intent category priority doNotPerform reported[x] medication[x] subject encounter supportingInformation authoredOn requester performer performerType recorder reasonCode reasonReference instantiatesCanonical instantiatesUri basedOn groupIdentifier courseOfTherapyType insurance note dosageInstruction dispenseRequest substitution priorPrescription detectedIssue eventHistory",
	"MedicationRequest.dispenseRequest": "initialFill dispenseInterval validityPeriod numberOfRepeatsAllowed quantity expectedSupplyDuration performer",
	"MedicationStatement":               "identifier basedOn partOf status statusReason category medication[x] subject context effective[x] dateAsserted informationSource derivedFrom reasonCode reasonReference note dosage",
	"Observation":                       "identifier basedOn partOf status category code subject focus encounter effective[x] issued performer value[x] dataAbsentReason interpretation note bodySite method specimen device referenceRange hasMember derivedFrom component",
	"Observation.component":             "code value[x] dataAbsentReason interpretation referenceRange",
	"Organization":                      "identifier active type name alias telecom address partOf contact endpoint",
	"Patient":                           "identifier active name telecom gender birthDate deceased[x] address maritalStatus multipleBirth[x] photo contact communication generalPractitioner managingOrganization link",
	"Patient.contact":                   "relationship name telecom address gender organization period",
	"Patient.communication":             "language preferred",
	"Person":                            "identifier name telecom gender birthDate address photo managingOrganization active link",
	"PlanDefinition":                    "url identifier version name title subtitle type status experimental subject[x] date publisher contact description useContext jurisdiction purpose usage copyright approvalDate lastReviewDate effectivePeriod topic author editor reviewer endorser relatedArtifact library goal action",
	"PlanDefinition.action":             "prefix title description textEquivalent priority code reason documentation goalId subject[x] trigger condition input output relatedAction timing[x] participant type groupingBehavior selectionBehavior requiredBehavior precheckBehavior cardinalityBehavior definition[x] transform dynamicValue action",
	"Practitioner":                      "identifier active name telecom address gender birthDate photo qualification communication",
	"Practitioner.qualification":        "identifier code period issuer",
	"PractitionerRole":                  "identifier active period practitioner organization code specialty location healthcareService telecom availableTime notAvailable availabilityExceptions endpoint",
	"Procedure":                         "identifier instantiatesCanonical instantiatesUri basedOn partOf status statusReason category code subject encounter performed[x] recorder asserter performer location reasonCode reasonReference bodySite outcome report complication complicationDetail followUp note focalDevice usedReference usedCode",
	"Procedure.performer":               "function actor onBehalfOf",
	"Provenance":                        "target occurred[x] recorded policy location reason activity agent entity signature",
	"Provenance.agent":                  "type role who onBehalfOf",
	"Provenance.entity":                 "role what agent",
	"RelatedPerson":                     "identifier active patient relationship name telecom gender birthDate address photo period communication",
	"ServiceRequest":                    "identifier instantiatesCanonical instantiatesUri basedOn replaces requisition status intent category priority doNotPerform code orderDetail quantity[x] subject encounter occurrence[x] asNeeded[x] authoredOn requester performerType performer locationCode locationReference reasonCode reasonReference insurance supportingInfo specimen bodySite note patientInstruction relevantHistory",
	"SupplyRequest":                     "identifier status category priority item[x] quantity parameter occurrence[x] authoredOn requester supplier reasonCode reasonReference deliverFrom deliverTo",
}

// preamble is the order of the elements that start every resource (an element starts with id
// and extension).
var preamble = []string{"id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension"}

// rank is where the element tagged tag goes among the children of an element of type key.
func rank(key, tag string) int {
	if i := slices.Index(preamble, tag); i >= 0 {
		return i - len(preamble)
	}
	for i, name := range order[key] {
		prefix, choice := strings.CutSuffix(name, "[x]")
		if tag == name || choice && strings.HasPrefix(tag, prefix) && len(tag) > len(prefix) && isUpper(tag[len(prefix)]) {
			return i
		}
	}
	return len(order[key])
}
