package epasim

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/ti/epa"
	"github.com/redclone/red/ti/wire"
)

// ebXML RegRep and IHE XDS.b identifiers.
const (
	statusSuccess        = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
	statusFailure        = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
	statusPartialSuccess = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
	severityError        = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
	statusApproved       = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
	statusDeprecated     = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"

	objectTypeStable         = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
	objectTypeClassification = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
	objectTypeExternalID     = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"
	nodeSubmissionSet        = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
	nodeFolder               = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"

	schemeSSPatientID     = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
	schemeSSUniqueID      = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
	schemeDEPatientID     = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
	schemeDEUniqueID      = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
	schemeClassCode       = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
	schemeConfidentiality = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
	schemeFormatCode      = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
	schemeFacilityType    = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
	schemePracticeSetting = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
	schemeTypeCode        = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"

	assocHasMember = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
	assocRPLC      = "urn:ihe:iti:2007:AssociationType:RPLC"
	assocXFRMRPLC  = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
	assocXFRM      = "urn:ihe:iti:2007:AssociationType:XFRM"
	assocAPND      = "urn:ihe:iti:2007:AssociationType:APND"
	assocSigns     = "urn:ihe:iti:2007:AssociationType:signs"

	queryFindDocuments = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
	queryGetDocuments  = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"

	// kvnrSuffix turns a KVNR into an XDS patient id (CX with the KVNR's assigning authority).
	kvnrSuffix = "^^^&1.2.276.0.76.4.8&ISO"
)

// XDS error codes (IHE ITI TF-3 Table 4.2.4.1-2) the simulator answers with.
const (
	errRegistryMetadata         = "XDSRegistryMetadataError"
	errRepositoryMetadata       = "XDSRepositoryMetadataError"
	errRegistry                 = "XDSRegistryError"
	errRepository               = "XDSRepositoryError"
	errUnknownPatientID         = "XDSUnknownPatientId"
	errPatientIDDoesNotMatch    = "XDSPatientIdDoesNotMatch"
	errMissingDocument          = "XDSMissingDocument"
	errMissingDocumentMetadata  = "XDSMissingDocumentMetadata"
	errDuplicateUniqueID        = "XDSDuplicateUniqueIdInRegistry"
	errDuplicateUniqueIDMessage = "XDSRegistryDuplicateUniqueIdInMessage"
	errUnresolvedReference      = "UnresolvedReferenceException"
	errUnknownCommunity         = "XDSUnknownCommunity"
	errInvalidContent           = "InvalidDocumentContent"
	errUnknownStoredQuery       = "XDSUnknownStoredQuery"
	errStoredQueryMissingParam  = "XDSStoredQueryMissingParam"
	errStoredQueryParamNumber   = "XDSStoredQueryParamNumber"
	errDocumentUniqueID         = "XDSDocumentUniqueIdError"
	errUnknownRepositoryID      = "XDSUnknownRepositoryId"
)

// registryError is one RegistryError; its context never carries metadata values or content.
type registryError struct{ code, context string }

type xdsErrors []registryError

func (x *xdsErrors) add(code, format string, args ...any) {
	*x = append(*x, registryError{code: code, context: fmt.Sprintf(format, args...)})
}

// registryResponse builds rs:RegistryResponse with the errors, declaring its namespace itself.
func registryResponse(status string, errs xdsErrors) *etree.Element {
	rr := etree.NewElement("rs:RegistryResponse")
	rr.CreateAttr("xmlns:rs", nsRS)
	rr.CreateAttr("status", status)
	appendErrors(rr, errs)
	return rr
}

func appendErrors(parent *etree.Element, errs xdsErrors) {
	if len(errs) == 0 {
		return
	}
	list := parent.CreateElement("rs:RegistryErrorList")
	list.CreateAttr("highestSeverity", severityError)
	for _, e := range errs {
		re := list.CreateElement("rs:RegistryError")
		re.CreateAttr("errorCode", e.code)
		re.CreateAttr("codeContext", e.context)
		re.CreateAttr("severity", severityError)
	}
}

func (s *Simulator) serveDocumentService(w http.ResponseWriter, r *http.Request) {
	caller := strings.TrimSpace(r.Header.Get(epa.HeaderTelematikID))
	if caller == "" {
		writeError(w, http.StatusForbidden, codeInvalAuth, "x-telematik-id is missing")
		return
	}
	headerKVNR, err := insurantID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeMalformedRequest, "x-insurantid must carry a valid KVNR")
		return
	}
	req, err := readSOAP(r, s.maxBody)
	if err != nil {
		s.writeFault(w, true, err.Error())
		return
	}
	var resp soapResponse
	var denied bool
	switch {
	case wire.Is(req.op, nsXDS, "ProvideAndRegisterDocumentSetRequest"):
		resp, denied = s.provideAndRegister(req, caller, headerKVNR)
	case wire.Is(req.op, nsQuery, "AdhocQueryRequest"):
		resp, denied = s.registryStoredQuery(req, caller, headerKVNR)
	case wire.Is(req.op, nsXDS, "RetrieveDocumentSetRequest"):
		resp, denied = s.retrieveDocumentSet(req, caller, headerKVNR)
	default:
		s.writeFault(w, true, "the body element is not ProvideAndRegisterDocumentSetRequest, AdhocQueryRequest or RetrieveDocumentSetRequest")
		return
	}
	if denied {
		writeError(w, http.StatusForbidden, codeNotEntitled, "")
		return
	}
	s.writeSOAP(w, req, resp)
}

// patientKVNR reads an XDS patient id KVNR^^^&1.2.276.0.76.4.8&ISO with a valid KVNR.
func patientKVNR(cx string) (string, bool) {
	kvnr, ok := strings.CutSuffix(strings.TrimSpace(cx), kvnrSuffix)
	if !ok || ident.KVNR(kvnr) != nil {
		return "", false
	}
	return kvnr, true
}

var dtm = regexp.MustCompile(`^\d{4}(\d\d){0,5}$`)

// isDTM tells whether v is an HL7 V2 DTM as XDS uses it (YYYY[MM[DD[hh[mm[ss]]]]], UTC).
func isDTM(v string) bool { return dtm.MatchString(v) }

// slotValues returns the values of e's rim:Slot called name.
func slotValues(e *etree.Element, name string) []string {
	for _, sl := range wire.Children(e, nsRIM, "Slot") {
		if sl.SelectAttrValue("name", "") == name {
			var out []string
			for _, v := range wire.Children(wire.Child(sl, nsRIM, "ValueList"), nsRIM, "Value") {
				out = append(out, wire.Text(v))
			}
			return out
		}
	}
	return nil
}

func slotValue(e *etree.Element, name string) string {
	if v := slotValues(e, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// externalID returns the value of e's rim:ExternalIdentifier with identificationScheme scheme.
func externalID(e *etree.Element, scheme string) string {
	for _, x := range wire.Children(e, nsRIM, "ExternalIdentifier") {
		if x.SelectAttrValue("identificationScheme", "") == scheme {
			return strings.TrimSpace(x.SelectAttrValue("value", ""))
		}
	}
	return ""
}

// localized returns the first LocalizedString of e's Name or Description and its language.
func localized(e *etree.Element, part string) (value, lang string) {
	ls := wire.Child(wire.Child(e, nsRIM, part), nsRIM, "LocalizedString")
	if ls == nil {
		return "", ""
	}
	return ls.SelectAttrValue("value", ""), ls.SelectAttrValue("xml:lang", "")
}
