package epasim

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/epa/xds"
	"github.com/redclone/red/ti/wire"
)

// queryParams are the Slots of an AdhocQuery: name → one list of alternatives per Slot (Slots of
// the same name are ANDed, values within a Slot ORed).
type queryParams map[string][][]string

func readQueryParams(aq *etree.Element) queryParams {
	p := queryParams{}
	for _, sl := range wire.Children(aq, xds.NSRIM, "Slot") {
		name := sl.SelectAttrValue("name", "")
		var alts []string
		for _, v := range wire.Children(wire.Child(sl, xds.NSRIM, "ValueList"), xds.NSRIM, "Value") {
			alts = append(alts, splitQueryValue(wire.Text(v))...)
		}
		p[name] = append(p[name], alts)
	}
	return p
}

// splitQueryValue reads a stored-query value: 'a', ('a','b') or a bare number.
func splitQueryValue(v string) []string {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "(") && strings.HasSuffix(v, ")") {
		v = v[1 : len(v)-1]
	}
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range v {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == ',' && !quoted:
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" || len(out) > 0 {
		out = append(out, s)
	}
	return out
}

// registryStoredQuery is ITI-18 with the stored queries FindDocuments and GetDocuments.
func (s *Simulator) registryStoredQuery(req *soapRequest, caller, headerKVNR string) (soapResponse, bool) {
	var errs xdsErrors
	answer := func(found []*entry, leaf bool) soapResponse {
		resp := etree.NewElement("query:AdhocQueryResponse")
		resp.CreateAttr("xmlns:query", xds.NSQuery)
		resp.CreateAttr("xmlns:rs", xds.NSRS)
		resp.CreateAttr("xmlns:rim", xds.NSRIM)
		status := xds.StatusSuccess
		if len(errs) > 0 {
			status = statusFailure
		}
		resp.CreateAttr("status", status)
		appendErrors(resp, errs)
		list := resp.CreateElement("rim:RegistryObjectList")
		for _, e := range found {
			if leaf {
				list.AddChild(extrinsicObject(e))
			} else {
				list.CreateElement("rim:ObjectRef").CreateAttr("id", e.EntryUUID)
			}
		}
		return soapResponse{action: actionITI18Response, body: resp}
	}
	aq := wire.Child(req.op, xds.NSRIM, "AdhocQuery")
	if aq == nil {
		errs.add(errRegistry, "the AdhocQueryRequest has no AdhocQuery")
		return answer(nil, false), false
	}
	leaf := false
	returnType := "ObjectRef"
	if ro := wire.Child(req.op, xds.NSQuery, "ResponseOption"); ro != nil {
		returnType = ro.SelectAttrValue("returnType", returnType)
	}
	switch returnType {
	case "LeafClass":
		leaf = true
	case "ObjectRef":
	default:
		errs.add(errRegistry, "the returnType must be LeafClass or ObjectRef")
		return answer(nil, false), false
	}
	params := readQueryParams(aq)
	switch aq.SelectAttrValue("id", "") {
	case xds.QueryFindDocuments:
		found, denied := s.findDocuments(params, caller, headerKVNR, &errs)
		return answer(found, leaf), denied
	case xds.QueryGetDocuments:
		found, denied := s.getDocuments(params, caller, headerKVNR, &errs)
		return answer(found, leaf), denied
	default:
		errs.add(errUnknownStoredQuery, "the stored query is not FindDocuments or GetDocuments")
		return answer(nil, false), false
	}
}

// single returns the one value of a parameter, adding an error when there is none or more.
func (p queryParams) single(name string, errs *xdsErrors) (string, bool) {
	groups := p[name]
	if len(groups) == 0 {
		errs.add(errStoredQueryMissingParam, "the parameter %s is missing", name)
		return "", false
	}
	if len(groups) > 1 || len(groups[0]) != 1 {
		errs.add(errStoredQueryParamNumber, "the parameter %s takes exactly one value", name)
		return "", false
	}
	return groups[0][0], true
}

// matches tells whether value satisfies every group of alternatives of parameter name.
func (p queryParams) matches(name string, value func(string) bool) bool {
	for _, alts := range p[name] {
		ok := false
		for _, a := range alts {
			if value(a) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (s *Simulator) findDocuments(p queryParams, caller, headerKVNR string, errs *xdsErrors) ([]*entry, bool) {
	pid, ok := p.single("$XDSDocumentEntryPatientId", errs)
	if !ok {
		return nil, false
	}
	if len(p["$XDSDocumentEntryStatus"]) == 0 {
		errs.add(errStoredQueryMissingParam, "the parameter $XDSDocumentEntryStatus is missing")
		return nil, false
	}
	kvnr, ok := patientKVNR(pid)
	if !ok {
		errs.add(errRegistry, "$XDSDocumentEntryPatientId must be KVNR^^^&1.2.276.0.76.4.8&ISO with a valid KVNR")
		return nil, false
	}
	if headerKVNR != "" && headerKVNR != kvnr {
		errs.add(errPatientIDDoesNotMatch, "$XDSDocumentEntryPatientId names another record than x-insurantid")
		return nil, false
	}
	switch _, access := s.access(kvnr, caller); access {
	case accessNoRecord:
		errs.add(errUnknownPatientID, "no health record exists for $XDSDocumentEntryPatientId")
		return nil, false
	case accessNotEntitled:
		return nil, true
	}
	codeFilter := func(param, scheme string, e *entry) bool {
		return p.matches(param, func(v string) bool {
			code, system, _ := strings.Cut(v, "^^")
			for _, c := range e.Classifications {
				if c.Scheme == scheme && c.Node == code && (system == "" || codingScheme(c) == system) {
					return true
				}
			}
			return false
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*entry
	for _, e := range s.store.entries() {
		if e.KVNR != kvnr ||
			!p.matches("$XDSDocumentEntryStatus", func(v string) bool { return v == e.Status }) ||
			!codeFilter("$XDSDocumentEntryClassCode", xds.SchemeClassCode, e) ||
			!codeFilter("$XDSDocumentEntryTypeCode", xds.SchemeTypeCode, e) ||
			!codeFilter("$XDSDocumentEntryFormatCode", xds.SchemeFormatCode, e) {
			continue
		}
		out = append(out, e)
	}
	return out, false
}

// getDocuments finds entries by entryUUID or uniqueId. With x-insurantid the caller must be
// entitled to that record and only its entries are found; without, entries of records the caller
// may not use are not found.
func (s *Simulator) getDocuments(p queryParams, caller, headerKVNR string, errs *xdsErrors) ([]*entry, bool) {
	byUUID, byUID := p["$XDSDocumentEntryEntryUUID"], p["$XDSDocumentEntryUniqueId"]
	if (len(byUUID) == 0) == (len(byUID) == 0) {
		errs.add(errStoredQueryParamNumber, "GetDocuments takes either $XDSDocumentEntryEntryUUID or $XDSDocumentEntryUniqueId")
		return nil, false
	}
	if headerKVNR != "" {
		switch _, access := s.access(headerKVNR, caller); access {
		case accessNoRecord:
			errs.add(errUnknownPatientID, "no health record exists for x-insurantid")
			return nil, false
		case accessNotEntitled:
			return nil, true
		}
	}
	var wanted []string
	for _, g := range append(byUUID, byUID...) {
		wanted = append(wanted, g...)
	}
	s.mu.Lock()
	var candidates []*entry
	for _, w := range wanted {
		e := s.store.byUniqueID(w)
		if len(byUUID) > 0 {
			e = s.store.byEntryUUID(w)
		}
		if e != nil && (headerKVNR == "" || e.KVNR == headerKVNR) {
			candidates = append(candidates, e)
		}
	}
	s.mu.Unlock()
	var out []*entry
	for _, e := range candidates {
		if _, access := s.access(e.KVNR, caller); access == accessOK {
			out = append(out, e)
		}
	}
	return out, false
}

// retrieveDocumentSet is ITI-43.
func (s *Simulator) retrieveDocumentSet(req *soapRequest, caller, headerKVNR string) (soapResponse, bool) {
	noRecord := false
	if headerKVNR != "" {
		switch _, access := s.access(headerKVNR, caller); access {
		case accessNotEntitled:
			return soapResponse{}, true
		case accessNoRecord:
			noRecord = true // nothing can be found; every request below fails
		}
	}
	var errs xdsErrors
	resp := etree.NewElement("xds:RetrieveDocumentSetResponse")
	resp.CreateAttr("xmlns:xds", xds.NSXDS)
	resp.CreateAttr("xmlns:rs", xds.NSRS)
	rr := resp.CreateElement("rs:RegistryResponse")
	var parts []wire.Part
	requests := wire.Children(req.op, xds.NSXDS, "DocumentRequest")
	if len(requests) == 0 {
		errs.add(errRepository, "the request names no DocumentRequest")
	}
	found := 0
	for i, dr := range requests {
		label := "DocumentRequest " + strconv.Itoa(i+1)
		repo := strings.TrimPrefix(wire.Text(wire.Child(dr, xds.NSXDS, "RepositoryUniqueId")), "urn:oid:")
		uid := wire.Text(wire.Child(dr, xds.NSXDS, "DocumentUniqueId"))
		s.mu.Lock()
		e := s.store.byUniqueID(uid)
		s.mu.Unlock()
		if e != nil && (noRecord || (headerKVNR != "" && e.KVNR != headerKVNR)) {
			e = nil
		}
		if e != nil && headerKVNR == "" {
			if _, access := s.access(e.KVNR, caller); access != accessOK {
				e = nil
			}
		}
		switch {
		case e == nil && !s.knownRepository(repo):
			errs.add(errUnknownRepositoryID, "%s: the repository is unknown", label)
			continue
		case e == nil:
			errs.add(errDocumentUniqueID, "%s: the document is unknown", label)
			continue
		case e.RepositoryID != repo:
			errs.add(errUnknownRepositoryID, "%s: the document is not in this repository", label)
			continue
		}
		s.mu.Lock()
		data, err := s.store.document(e.EntryUUID)
		s.mu.Unlock()
		if err != nil {
			errs.add(errRepository, "%s: the document could not be read", label)
			continue
		}
		found++
		out := resp.CreateElement("xds:DocumentResponse")
		out.CreateElement("xds:HomeCommunityId").SetText(e.HomeCommunityID)
		out.CreateElement("xds:RepositoryUniqueId").SetText(e.RepositoryID)
		out.CreateElement("xds:DocumentUniqueId").SetText(e.UniqueID)
		out.CreateElement("xds:mimeType").SetText(e.MimeType)
		doc := out.CreateElement("xds:Document")
		if req.mtom {
			id := s.contentID()
			inc := doc.CreateElement("xop:Include")
			inc.CreateAttr("xmlns:xop", wire.NSXOP)
			inc.CreateAttr("href", "cid:"+id)
			parts = append(parts, wire.Part{ID: id, MimeType: e.MimeType, Data: data})
		} else {
			doc.SetText(base64.StdEncoding.EncodeToString(data))
		}
	}
	status := xds.StatusSuccess
	switch {
	case found == 0:
		status = statusFailure
	case len(errs) > 0:
		status = statusPartialSuccess
	}
	rr.CreateAttr("status", status)
	appendErrors(rr, errs)
	return soapResponse{action: actionITI43Response, body: resp, parts: parts, mtom: req.mtom}, false
}

// knownRepository tells whether repo is the repository of a configured record.
func (s *Simulator) knownRepository(repo string) bool {
	for _, r := range s.records {
		if strings.TrimPrefix(r.HomeCommunityID, "urn:oid:") == repo {
			return true
		}
	}
	return false
}

func codingScheme(c classification) string {
	for _, sl := range c.Slots {
		if sl.Name == "codingScheme" && len(sl.Values) > 0 {
			return sl.Values[0]
		}
	}
	return ""
}

// extrinsicObject writes a registry entry as rim:ExtrinsicObject (the rim prefix must be declared
// by an ancestor).
func extrinsicObject(e *entry) *etree.Element {
	eo := etree.NewElement("rim:ExtrinsicObject")
	eo.CreateAttr("id", e.EntryUUID)
	eo.CreateAttr("mimeType", e.MimeType)
	eo.CreateAttr("objectType", xds.ObjectTypeStable)
	eo.CreateAttr("status", e.Status)
	eo.CreateAttr("home", e.HomeCommunityID)
	slots := append([]slot(nil), e.Slots...)
	slots = append(slots,
		slot{Name: "size", Values: []string{strconv.FormatInt(e.Size, 10)}},
		slot{Name: "hash", Values: []string{e.Hash}},
		slot{Name: "repositoryUniqueId", Values: []string{e.RepositoryID}},
	)
	for _, sl := range slots {
		writeSlot(eo, sl)
	}
	if e.Title != "" {
		writeLocalized(eo, "rim:Name", e.Title, e.TitleLang)
	}
	if e.Comments != "" {
		writeLocalized(eo, "rim:Description", e.Comments, e.CommentsLang)
	}
	for _, c := range e.Classifications {
		ce := eo.CreateElement("rim:Classification")
		ce.CreateAttr("id", c.ID)
		ce.CreateAttr("classificationScheme", c.Scheme)
		ce.CreateAttr("classifiedObject", e.EntryUUID)
		ce.CreateAttr("nodeRepresentation", c.Node)
		ce.CreateAttr("objectType", xds.ObjectTypeClassification)
		for _, sl := range c.Slots {
			writeSlot(ce, sl)
		}
		if c.Name != "" {
			writeLocalized(ce, "rim:Name", c.Name, "")
		}
	}
	writeExternalID(eo, e.PatientIDEIID, xds.SchemeDEPatientID, e.EntryUUID, e.PatientID, "XDSDocumentEntry.patientId")
	writeExternalID(eo, e.UniqueIDEIID, xds.SchemeDEUniqueID, e.EntryUUID, e.UniqueID, "XDSDocumentEntry.uniqueId")
	return eo
}

func writeSlot(parent *etree.Element, sl slot) {
	se := parent.CreateElement("rim:Slot")
	se.CreateAttr("name", sl.Name)
	vl := se.CreateElement("rim:ValueList")
	for _, v := range sl.Values {
		vl.CreateElement("rim:Value").SetText(v)
	}
}

func writeLocalized(parent *etree.Element, tag, value, lang string) {
	ls := parent.CreateElement(tag).CreateElement("rim:LocalizedString")
	if lang != "" {
		ls.CreateAttr("xml:lang", lang)
	}
	ls.CreateAttr("charset", "UTF-8")
	ls.CreateAttr("value", value)
}

func writeExternalID(parent *etree.Element, id, scheme, object, value, name string) {
	x := parent.CreateElement("rim:ExternalIdentifier")
	x.CreateAttr("id", id)
	x.CreateAttr("identificationScheme", scheme)
	x.CreateAttr("registryObject", object)
	x.CreateAttr("value", value)
	x.CreateAttr("objectType", xds.ObjectTypeExternalID)
	writeLocalized(x, "rim:Name", name, "")
}
