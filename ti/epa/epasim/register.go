package epasim

import (
	"crypto/sha1" //nolint:gosec // XDS metadata carries the SHA-1 of a document; it is no security check
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/epa/xds"
	"github.com/redclone/red/ti/wire"
)

// requiredCodes are the coded attributes every DocumentEntry must carry, with the number of
// classifications allowed (0 = one or more).
var requiredCodes = []struct {
	scheme, name string
	exactlyOne   bool
}{
	{xds.SchemeClassCode, "classCode", true},
	{xds.SchemeTypeCode, "typeCode", true},
	{xds.SchemeFormatCode, "formatCode", true},
	{xds.SchemeConfidentiality, "confidentialityCode", false},
	{xds.SchemeFacilityType, "healthcareFacilityTypeCode", true},
	{xds.SchemePracticeSetting, "practiceSettingCode", true},
}

// draft is a DocumentEntry of the request that passed the checks.
type draft struct {
	eo      *etree.Element
	id      string
	content []byte
}

// provideAndRegister is ITI-41. denied reports a caller without entitlement for the record.
func (s *Simulator) provideAndRegister(req *soapRequest, caller, headerKVNR string) (resp soapResponse, denied bool) {
	var errs xdsErrors
	fail := func() (soapResponse, bool) {
		return soapResponse{action: actionITI41Response, body: registryResponse(statusFailure, errs)}, false
	}
	sor := wire.Child(req.op, xds.NSLCM, "SubmitObjectsRequest")
	rol := wire.Child(sor, xds.NSRIM, "RegistryObjectList")
	if rol == nil {
		errs.add(errRegistryMetadata, "the request has no SubmitObjectsRequest with a RegistryObjectList")
		return fail()
	}
	ss, problem := submissionSet(rol)
	if ss == nil {
		errs.add(errRegistryMetadata, "%s", problem)
		return fail()
	}
	ssID := ss.SelectAttrValue("id", "")
	kvnr, ok := patientKVNR(externalID(ss, xds.SchemeSSPatientID))
	if !ok {
		errs.add(errRegistryMetadata, "XDSSubmissionSet.patientId must be KVNR^^^&1.2.276.0.76.4.8&ISO with a valid KVNR")
		return fail()
	}
	if headerKVNR != "" && headerKVNR != kvnr {
		errs.add(errPatientIDDoesNotMatch, "XDSSubmissionSet.patientId names another record than x-insurantid")
		return fail()
	}
	rec, access := s.access(kvnr, caller)
	switch access {
	case accessNoRecord:
		errs.add(errUnknownPatientID, "no health record exists for XDSSubmissionSet.patientId")
		return fail()
	case accessNotEntitled:
		return soapResponse{}, true
	}

	for _, hc := range requestedCommunities(req.header, sor) {
		if hc != rec.HomeCommunityID {
			errs.add(errUnknownCommunity, "the homeCommunityId of the request is not the home community of the record")
			break
		}
	}
	if externalID(ss, xds.SchemeSSUniqueID) == "" {
		errs.add(errRegistryMetadata, "the SubmissionSet has no XDSSubmissionSet.uniqueId")
	}
	if !isDTM(slotValue(ss, "submissionTime")) {
		errs.add(errRegistryMetadata, "the SubmissionSet has no submissionTime of the form YYYYMMDDhhmmss")
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	docs := map[string]*etree.Element{}
	for _, d := range wire.Children(req.op, xds.NSXDS, "Document") {
		id := d.SelectAttrValue("id", "")
		if _, dup := docs[id]; dup {
			errs.add(errRegistryMetadata, "two Documents have the id %q", id)
		}
		docs[id] = d
	}
	eos := wire.Children(rol, xds.NSRIM, "ExtrinsicObject")
	if len(eos) == 0 {
		errs.add(errRegistryMetadata, "the SubmissionSet holds no DocumentEntry (ExtrinsicObject)")
	}
	var drafts []draft
	ids := map[string]bool{}
	uniqueIDs := map[string]bool{}
	for i, eo := range eos {
		d, ok := s.checkEntry(eo, i, kvnr, ids, uniqueIDs, docs, req.attachments, &errs)
		if ok {
			drafts = append(drafts, d)
		}
	}
	for id := range docs {
		if !ids[id] {
			errs.add(errMissingDocumentMetadata, "the Document %q has no DocumentEntry", id)
		}
	}
	deprecate := s.checkAssociations(rol, ssID, kvnr, ids, &errs)
	if len(errs) > 0 {
		return fail()
	}

	added := make([]*entry, 0, len(drafts))
	contents := make([][]byte, 0, len(drafts))
	for _, d := range drafts {
		e, err := s.newEntry(d, kvnr, rec, caller, externalID(ss, xds.SchemeSSUniqueID))
		if err != nil {
			errs.add(errRepository, "the document could not be stored")
			return fail()
		}
		added = append(added, e)
		contents = append(contents, d.content)
	}
	if err := s.store.register(added, contents, deprecate); err != nil {
		errs.add(errRepository, "the document could not be stored")
		return fail()
	}
	return soapResponse{action: actionITI41Response, body: registryResponse(xds.StatusSuccess, nil)}, false
}

// submissionSet finds the one RegistryPackage classified as SubmissionSet, either by a nested
// Classification or by one in the RegistryObjectList.
func submissionSet(rol *etree.Element) (*etree.Element, string) {
	nodeOf := map[string]string{} // package id → classification node
	for _, c := range wire.Children(rol, xds.NSRIM, "Classification") {
		nodeOf[c.SelectAttrValue("classifiedObject", "")] = c.SelectAttrValue("classificationNode", "")
	}
	var sets []*etree.Element
	for _, p := range wire.Children(rol, xds.NSRIM, "RegistryPackage") {
		node := nodeOf[p.SelectAttrValue("id", "")]
		for _, c := range wire.Children(p, xds.NSRIM, "Classification") {
			if n := c.SelectAttrValue("classificationNode", ""); n != "" {
				node = n
			}
		}
		switch node {
		case xds.NodeSubmissionSet:
			sets = append(sets, p)
		case nodeFolder:
			return nil, "folders are not supported: the Aktensystem manages its folders itself"
		default:
			return nil, "a RegistryPackage is classified neither as SubmissionSet nor as Folder"
		}
	}
	if len(sets) != 1 {
		return nil, "the request must hold exactly one SubmissionSet"
	}
	if sets[0].SelectAttrValue("id", "") == "" {
		return nil, "the SubmissionSet has no id"
	}
	return sets[0], ""
}

// requestedCommunities are the home community ids a request names: the homeCommunityBlock header
// and the homeCommunityId request slot.
func requestedCommunities(header, sor *etree.Element) []string {
	var out []string
	if hc := wire.Text(wire.Child(wire.Child(header, nsXDR, "homeCommunityBlock"), nsXDR, "homeCommunityId")); hc != "" {
		out = append(out, hc)
	}
	if hc := slotValue(wire.Child(sor, xds.NSRS, "RequestSlotList"), "homeCommunityId"); hc != "" {
		out = append(out, hc)
	}
	return out
}

// checkEntry checks one DocumentEntry and its document, adding every problem to errs.
func (s *Simulator) checkEntry(eo *etree.Element, i int, kvnr string, ids, uniqueIDs map[string]bool,
	docs map[string]*etree.Element, attachments map[string][]byte, errs *xdsErrors) (draft, bool) {
	n := len(*errs)
	id := eo.SelectAttrValue("id", "")
	label := "DocumentEntry " + strconv.Itoa(i+1)
	switch {
	case id == "":
		errs.add(errRegistryMetadata, "%s has no id", label)
	case ids[id]:
		errs.add(errRegistryMetadata, "%s repeats the id %q", label, id)
	case strings.HasPrefix(id, "urn:uuid:") && s.store.byEntryUUID(id) != nil:
		errs.add(errRegistryMetadata, "%s: the entryUUID %q is already registered", label, id)
	}
	ids[id] = true
	if ot := eo.SelectAttrValue("objectType", ""); ot != xds.ObjectTypeStable {
		errs.add(errRegistryMetadata, "%s: only stable DocumentEntries (objectType %s) are accepted", label, xds.ObjectTypeStable)
	}
	if eo.SelectAttrValue("mimeType", "") == "" {
		errs.add(errRegistryMetadata, "%s has no mimeType", label)
	}
	switch pid := externalID(eo, xds.SchemeDEPatientID); {
	case pid == "":
		errs.add(errRegistryMetadata, "%s has no XDSDocumentEntry.patientId", label)
	default:
		if k, ok := patientKVNR(pid); !ok {
			errs.add(errRegistryMetadata, "%s: XDSDocumentEntry.patientId must be KVNR^^^&1.2.276.0.76.4.8&ISO with a valid KVNR", label)
		} else if k != kvnr {
			errs.add(errPatientIDDoesNotMatch, "%s: XDSDocumentEntry.patientId differs from XDSSubmissionSet.patientId", label)
		}
	}
	switch uid := externalID(eo, xds.SchemeDEUniqueID); {
	case uid == "" || len(uid) > 128 || strings.ContainsAny(uid, " \t\r\n"):
		errs.add(errRegistryMetadata, "%s needs an XDSDocumentEntry.uniqueId of at most 128 characters", label)
	case uniqueIDs[uid]:
		errs.add(errDuplicateUniqueIDMessage, "%s repeats the uniqueId of another DocumentEntry", label)
	case s.store.byUniqueID(uid) != nil:
		errs.add(errDuplicateUniqueID, "%s: a document with this uniqueId is already registered", label)
	default:
		uniqueIDs[uid] = true
	}
	for _, rc := range requiredCodes {
		var found []*etree.Element
		for _, c := range wire.Children(eo, xds.NSRIM, "Classification") {
			if c.SelectAttrValue("classificationScheme", "") == rc.scheme {
				found = append(found, c)
			}
		}
		if len(found) == 0 || (rc.exactlyOne && len(found) > 1) {
			want := "exactly one"
			if !rc.exactlyOne {
				want = "at least one"
			}
			errs.add(errRegistryMetadata, "%s needs %s %s", label, want, rc.name)
			continue
		}
		for _, c := range found {
			if c.SelectAttrValue("nodeRepresentation", "") == "" || slotValue(c, "codingScheme") == "" {
				errs.add(errRegistryMetadata, "%s: the %s needs a code (nodeRepresentation) and a codingScheme", label, rc.name)
			}
		}
	}
	if !isDTM(slotValue(eo, "creationTime")) {
		errs.add(errRegistryMetadata, "%s needs a creationTime of the form YYYYMMDDhhmmss", label)
	}
	for _, name := range []string{"serviceStartTime", "serviceStopTime"} {
		if v := slotValues(eo, name); v != nil && (len(v) != 1 || !isDTM(v[0])) {
			errs.add(errRegistryMetadata, "%s: %s must be one time of the form YYYYMMDDhhmmss", label, name)
		}
	}
	if slotValue(eo, "languageCode") == "" {
		errs.add(errRegistryMetadata, "%s needs a languageCode", label)
	}

	var data []byte
	if d, ok := docs[id]; !ok || id == "" {
		errs.add(errMissingDocument, "%s has no Document", label)
	} else {
		c, found, err := wire.Content(d, attachments)
		switch {
		case !found:
			errs.add(errMissingDocument, "%s: the xop:Include of its Document names no MIME part of the request", label)
		case err != nil:
			errs.add(errInvalidContent, "%s: its Document is not valid base64", label)
		case len(c) == 0:
			errs.add(errInvalidContent, "%s: its Document is empty", label)
		default:
			data = c
			if v := slotValue(eo, "size"); v != "" {
				if size, err := strconv.ParseInt(v, 10, 64); err != nil || size != int64(len(c)) {
					errs.add(errRepositoryMetadata, "%s: the size slot does not match the document", label)
				}
			}
			if v := slotValue(eo, "hash"); v != "" && !strings.EqualFold(v, sha1Hex(c)) {
				errs.add(errRepositoryMetadata, "%s: the hash slot does not match the document", label)
			}
		}
	}
	return draft{eo: eo, id: id, content: data}, len(*errs) == n
}

// checkAssociations checks the HasMember associations (one to every DocumentEntry) and the
// associations to registered entries (RPLC, XFRM, XFRM_RPLC, APND, signs), returning the
// entryUUIDs to deprecate.
func (s *Simulator) checkAssociations(rol *etree.Element, ssID, kvnr string, ids map[string]bool, errs *xdsErrors) []string {
	members := map[string]bool{}
	var deprecate []string
	for i, a := range wire.Children(rol, xds.NSRIM, "Association") {
		typ := a.SelectAttrValue("associationType", "")
		src, tgt := a.SelectAttrValue("sourceObject", ""), a.SelectAttrValue("targetObject", "")
		label := "Association " + strconv.Itoa(i+1)
		switch typ {
		case xds.AssocHasMember:
			if src != ssID {
				errs.add(errRegistryMetadata, "%s: a HasMember association must start at the SubmissionSet", label)
				continue
			}
			if ids[tgt] {
				members[tgt] = true
				continue
			}
			if e := s.store.byEntryUUID(tgt); e == nil {
				errs.add(errUnresolvedReference, "%s: the target is neither in the request nor registered", label)
			} else if e.KVNR != kvnr {
				errs.add(errPatientIDDoesNotMatch, "%s: the target belongs to another record", label)
			}
		case xds.AssocRPLC, assocXFRMRPLC, assocXFRM, assocAPND, assocSigns:
			if !ids[src] {
				errs.add(errRegistryMetadata, "%s: the source must be a DocumentEntry of the request", label)
				continue
			}
			e := s.store.byEntryUUID(tgt)
			switch {
			case e == nil:
				errs.add(errUnresolvedReference, "%s: the target is not a registered DocumentEntry", label)
			case e.KVNR != kvnr:
				errs.add(errPatientIDDoesNotMatch, "%s: the target belongs to another record", label)
			case e.Status != xds.StatusApproved:
				errs.add(errRegistryMetadata, "%s: the target is not Approved", label)
			case typ == xds.AssocRPLC || typ == assocXFRMRPLC:
				deprecate = append(deprecate, tgt)
			}
		default:
			errs.add(errRegistryMetadata, "%s: the association type is not supported", label)
		}
	}
	for id := range ids {
		if id != "" && !members[id] {
			errs.add(errRegistryMetadata, "the DocumentEntry %q is not a member of the SubmissionSet (HasMember association missing)", id)
		}
	}
	return deprecate
}

// newEntry turns a checked DocumentEntry into a registry entry, replacing symbolic ids.
func (s *Simulator) newEntry(d draft, kvnr string, rec Record, caller, ssUID string) (*entry, error) {
	id := func(v string) (string, error) {
		if strings.HasPrefix(v, "urn:uuid:") {
			return v, nil
		}
		return s.newUUID()
	}
	var err error
	e := &entry{
		UniqueID:         externalID(d.eo, xds.SchemeDEUniqueID),
		KVNR:             kvnr,
		PatientID:        kvnr + kvnrSuffix,
		MimeType:         d.eo.SelectAttrValue("mimeType", ""),
		Status:           xds.StatusApproved,
		Size:             int64(len(d.content)),
		Hash:             sha1Hex(d.content),
		RepositoryID:     strings.TrimPrefix(rec.HomeCommunityID, "urn:oid:"),
		HomeCommunityID:  rec.HomeCommunityID,
		SubmissionSetUID: ssUID,
		SubmittedAt:      s.now().UTC(),
		SubmittedBy:      caller,
	}
	if e.EntryUUID, err = id(d.id); err != nil {
		return nil, err
	}
	if e.PatientIDEIID, err = s.newUUID(); err != nil {
		return nil, err
	}
	if e.UniqueIDEIID, err = s.newUUID(); err != nil {
		return nil, err
	}
	e.Title, e.TitleLang = localized(d.eo, "Name")
	e.Comments, e.CommentsLang = localized(d.eo, "Description")
	for _, sl := range wire.Children(d.eo, xds.NSRIM, "Slot") {
		switch name := sl.SelectAttrValue("name", ""); name {
		case "size", "hash", "repositoryUniqueId", "homeCommunityId":
		default:
			e.Slots = append(e.Slots, slot{Name: name, Values: slotValues(d.eo, name)})
		}
	}
	for _, c := range wire.Children(d.eo, xds.NSRIM, "Classification") {
		cl := classification{
			Scheme: c.SelectAttrValue("classificationScheme", ""),
			Node:   c.SelectAttrValue("nodeRepresentation", ""),
		}
		cl.Name, _ = localized(c, "Name")
		if cl.ID, err = id(c.SelectAttrValue("id", "")); err != nil {
			return nil, err
		}
		for _, sl := range wire.Children(c, xds.NSRIM, "Slot") {
			name := sl.SelectAttrValue("name", "")
			cl.Slots = append(cl.Slots, slot{Name: name, Values: slotValues(c, name)})
		}
		e.Classifications = append(e.Classifications, cl)
	}
	return e, nil
}

func sha1Hex(b []byte) string {
	sum := sha1.Sum(b) //nolint:gosec // see import
	return hex.EncodeToString(sum[:])
}
