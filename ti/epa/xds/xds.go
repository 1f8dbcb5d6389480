// Package xds names the identifiers of the ePA document service that the ePA client (package
// epa) writes and its simulator (package epasim) reads, and back: the XML namespaces of
// WS-Addressing, IHE XDS.b and ebXML RegRep 3.0, the WS-Addressing actions of ITI-41, ITI-18 and
// ITI-43, and the ebRIM object types, classification schemes, statuses, associations and stored
// queries of the XDS metadata (IHE ITI TF-3 4.2.5).
package xds

// XML namespaces.
const (
	NSWSA   = "http://www.w3.org/2005/08/addressing"
	NSXDS   = "urn:ihe:iti:xds-b:2007"
	NSLCM   = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
	NSRIM   = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
	NSRS    = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
	NSQuery = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
)

// WS-Addressing actions of the three transactions.
const (
	ActionITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
	ActionITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
	ActionITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
)

// Statuses of a response and of a registry object.
const (
	StatusSuccess  = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
	StatusApproved = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
)

// Object types, classification nodes and schemes of the metadata.
const (
	ObjectTypeStable         = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
	ObjectTypeClassification = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
	ObjectTypeExternalID     = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"
	NodeSubmissionSet        = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"

	SchemeSSPatientID     = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
	SchemeSSUniqueID      = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
	SchemeDEPatientID     = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
	SchemeDEUniqueID      = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
	SchemeClassCode       = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
	SchemeConfidentiality = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
	SchemeFormatCode      = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
	SchemeFacilityType    = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
	SchemePracticeSetting = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
	SchemeTypeCode        = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
)

// Associations.
const (
	AssocHasMember = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
	AssocRPLC      = "urn:ihe:iti:2007:AssociationType:RPLC"
)

// Stored queries (ITI-18).
const (
	QueryFindDocuments = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
	QueryGetDocuments  = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
)
