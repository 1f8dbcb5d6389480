package epasim

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/ti/epa"
	"github.com/redclone/red/ti/epa/xds"
	"github.com/redclone/red/ti/wire"
)

// ebXML RegRep and IHE XDS.b identifiers.
const (
	statusFailure        = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
	statusPartialSuccess = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
	severityError        = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
	statusDeprecated     = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"

	nodeFolder = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"

	assocXFRMRPLC = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
	assocXFRM     = "urn:ihe:iti:2007:AssociationType:XFRM"
	assocAPND     = "urn:ihe:iti:2007:AssociationType:APND"
	assocSigns    = "urn:ihe:iti:2007:AssociationType:signs"

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
	rr.CreateAttr("xmlns:rs", xds.NSRS)
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
	case wire.Is(req.op, xds.NSXDS, "ProvideAndRegisterDocumentSetRequest"):
		resp, denied = s.provideAndRegister(req, caller, headerKVNR)
	case wire.Is(req.op, xds.NSQuery, "AdhocQueryRequest"):
		resp, denied = s.registryStoredQuery(req, caller, headerKVNR)
	case wire.Is(req.op, xds.NSXDS, "RetrieveDocumentSetRequest"):
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
	for _, sl := range wire.Children(e, xds.NSRIM, "Slot") {
		if sl.SelectAttrValue("name", "") == name {
			var out []string
			for _, v := range wire.Children(wire.Child(sl, xds.NSRIM, "ValueList"), xds.NSRIM, "Value") {
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
	for _, x := range wire.Children(e, xds.NSRIM, "ExternalIdentifier") {
		if x.SelectAttrValue("identificationScheme", "") == scheme {
			return strings.TrimSpace(x.SelectAttrValue("value", ""))
		}
	}
	return ""
}

// localized returns the first LocalizedString of e's Name or Description and its language.
func localized(e *etree.Element, part string) (value, lang string) {
	ls := wire.Child(wire.Child(e, xds.NSRIM, part), xds.NSRIM, "LocalizedString")
	if ls == nil {
		return "", ""
	}
	return ls.SelectAttrValue("value", ""), ls.SelectAttrValue("xml:lang", "")
}
