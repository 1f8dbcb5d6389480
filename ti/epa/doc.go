// Package epa is the client of an ePA 3 health record system ("ePA für alle") for a practice: it
// asks whether an insured person has a record and whether the practice's SMC-B is entitled to it,
// and uploads, finds and retrieves documents through the XDS Document Service (IHE ITI-41,
// ITI-18, ITI-43).
//
// The client speaks plain HTTP (the VAU channel of a real Aktensystem is left out) and names the
// record with the header x-insurantid and its institution with x-telematik-id, as the simulator
// in package epasim expects:
//
//	GET  /information/api/v1/ehr                      → 204 + x-homecommunityid, or 404 noHealthRecord
//	GET  /epa/basic/api/v1/ps/entitlements            → 200 {"actorId","validTo"}, or 403 notEntitled
//	POST /epa/basic/api/v1/ps/entitlements            {"jwt": proof} → 201 {"validTo"}
//	POST /epa/xds-document/api/I_Document_Management  SOAP 1.2 (MTOM/XOP for ITI-41)
//
// Uploads carry the XDS metadata ePA expects: patientId KVNR^^^&1.2.276.0.76.4.8&ISO, the author
// institution as XON with the Telematik-ID (assigning authority 1.2.276.0.76.4.188), classCode,
// typeCode, formatCode, confidentialityCode, healthcareFacilityTypeCode and practiceSettingCode
// from the IHE Deutschland value sets, creation time, language and uniqueIds (2.25 OIDs).
//
// Errors are typed: errors.Is(err, ErrNoRecord), ErrNotAuthorized and ErrDocumentNotFound work
// for answers of the REST interfaces ([APIError]) and of XDS ([XDSError], which lists the
// RegistryError codes); a SOAP Fault is a [SOAPFaultError]. Error messages never contain the KVNR
// or document content. Every call is bounded by its context and, when the context has no
// deadline, by Client.Timeout.
package epa
