// Package epasim simulates the part of an ePA 3 health record system ("ePA für alle",
// Aktensystem) that a practice's software talks to: the record status lookup of the Information
// Service, the practice's entitlement (Befugnis), and the XDS Document Service with IHE ITI-41,
// ITI-18 and ITI-43, keeping uploaded documents under a state directory so they survive a restart.
//
// It speaks plain HTTP on loopback: the VAU channel, TLS and the ID-Token of a real Aktensystem
// are left out. The caller names its institution with the header x-telematik-id (the Telematik-ID
// of its SMC-B, which a real Aktensystem takes from the ID-Token of the user session) and the
// health record with x-insurantid (the KVNR), as in ePA 3.
//
// # Endpoints
//
//	GET  /information/api/v1/ehr                      record status (I_Information_Service getRecordStatus)
//	GET  /epa/basic/api/v1/ps/entitlements            the caller's entitlement (simulator extension)
//	POST /epa/basic/api/v1/ps/entitlements            set the caller's entitlement (simplified setEntitlementPs)
//	POST /epa/xds-document/api/I_Document_Management  SOAP 1.2: ITI-41, ITI-18, ITI-43
//
// GET /information/api/v1/ehr needs x-insurantid and answers 204 when the record exists, with
// the record's home community in the response header x-homecommunityid (a simulator extension:
// a real primary system knows the home community of each Aktensystem), 404 {"errorCode":
// "noHealthRecord"} when it does not and 400 {"errorCode":"malformedRequest"} for a KVNR that is
// not one. It needs no caller identity, like the real operation.
//
// GET /epa/basic/api/v1/ps/entitlements needs x-insurantid and x-telematik-id and answers 200
// {"actorId":"<telematik-id>","validTo":"<RFC 3339>"} when the caller holds an entitlement that
// has not expired, 403 {"errorCode":"notEntitled"} when it does not, 403 {"errorCode":
// "invalAuth"} without x-telematik-id and 404 noHealthRecord. A real Aktensystem has no such
// read operation for primary systems; they learn it from a 403 on their first access.
//
// POST /epa/basic/api/v1/ps/entitlements takes {"jwt":"…"} and entitles the caller for 90 days
// (the default for a practice), answering 201 {"validTo":"…"}. The real operation verifies a
// signed proof of patient presence (VSDM check digit or PoPP token); the simulator accepts any
// non-empty jwt. Granted entitlements are kept in the state directory.
//
// The document endpoint takes a SOAP 1.2 envelope as application/soap+xml, or an MTOM/XOP
// package (multipart/related; type="application/xop+xml") whose parts the envelope references
// with xop:Include. The operation is chosen by the body element:
//
//   - ProvideAndRegisterDocumentSetRequest (ITI-41): an ebRIM SubmitObjectsRequest with one
//     SubmissionSet and one or more stable DocumentEntries, documents inline as base64 or as
//     xop:Include. The metadata is checked (patientId KVNR^^^&1.2.276.0.76.4.8&ISO with a valid
//     KVNR, uniqueIds, classCode, typeCode, formatCode, confidentialityCode,
//     healthcareFacilityTypeCode, practiceSettingCode, creationTime, languageCode, the HasMember
//     associations, a document for every entry and an entry for every document, size and hash when
//     given); every problem found is reported at once in a RegistryResponse with status Failure
//     and XDS error codes (XDSRegistryMetadataError, XDSUnknownPatientId, XDSPatientIdDoesNotMatch,
//     XDSMissingDocument, XDSMissingDocumentMetadata, XDSDuplicateUniqueIdInRegistry,
//     XDSRegistryDuplicateUniqueIdInMessage, XDSRepositoryMetadataError, UnresolvedReferenceException,
//     XDSUnknownCommunity, InvalidDocumentContent), and nothing is stored. Symbolic ids are replaced
//     by urn:uuid ids. An RPLC association deprecates the replaced entry.
//   - AdhocQueryRequest (ITI-18): the stored queries FindDocuments (by patient and status,
//     optionally classCode, typeCode and formatCode) and GetDocuments (by entryUUID or uniqueId),
//     returning LeafClass or ObjectRef.
//   - RetrieveDocumentSetRequest (ITI-43): the documents by repository and document uniqueId; the
//     answer is MTOM when the request was, inline base64 otherwise.
//
// The record a request concerns is x-insurantid when given, otherwise the patient named in the
// request. A record that does not exist is XDSUnknownPatientId (ITI-41, ITI-18); a caller without
// a valid entitlement for it gets HTTP 403 {"errorCode":"notEntitled"}, as an Aktensystem answers
// any operation that needs an entitlement; a request without x-telematik-id gets 403 invalAuth.
// An envelope that cannot be read is a SOAP Fault (HTTP 400).
//
// The repository uniqueId of a record is its home community OID without the urn:oid: prefix.
//
// Documents hold health data: the simulator keeps them only under Config.StateDir (files 0600,
// written atomically) and never logs anything.
package epasim
