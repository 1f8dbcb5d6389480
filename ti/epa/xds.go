package epa

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/epa/xds"
	"github.com/redclone/red/ti/wire"
)

// Upload stores doc in the record of kvnr (ITI-41, the document as an MTOM attachment) and
// returns its uniqueId, the documentID Retrieve takes.
func (c *Client) Upload(ctx context.Context, kvnr string, doc Document) (string, error) {
	if err := c.check(kvnr); err != nil {
		return "", err
	}
	switch {
	case len(doc.Content) == 0:
		return "", errors.New("epa: the document has no content")
	case doc.MimeType == "":
		return "", errors.New("epa: the document needs a MIME type")
	case doc.ClassCode.Code == "" || doc.TypeCode.Code == "":
		return "", errors.New("epa: the document needs a classCode and a typeCode")
	}
	var err error
	if doc.EntryUUID == "" {
		if doc.EntryUUID, err = newUUID(c.random()); err != nil {
			return "", err
		}
	}
	if doc.ID == "" {
		if doc.ID = uuidOID(doc.EntryUUID); doc.ID == "" {
			return "", errors.New("epa: the document's EntryUUID is not urn:uuid: followed by a UUID")
		}
	}
	ssUUID, err := newUUID(c.random())
	if err != nil {
		return "", err
	}
	env, body, err := c.newEnvelope(xds.ActionITI41)
	if err != nil {
		return "", err
	}
	cid := strings.TrimPrefix(ssUUID, "urn:uuid:") + "@urn:ihe:iti:xds-b:2007"
	c.provideAndRegister(body, kvnr, doc, uuidOID(ssUUID), cid)

	ctx, cancel := c.bound(ctx)
	defer cancel()
	ans, err := c.call(ctx, kvnr, xds.ActionITI41, env, true, wire.Part{ID: cid, MimeType: doc.MimeType, Data: doc.Content})
	if err != nil {
		return "", err
	}
	if !wire.Is(ans.op, xds.NSRS, "RegistryResponse") {
		return "", errors.New("epa: the answer to ITI-41 is not a RegistryResponse")
	}
	if err := registryStatus(ans.op); err != nil {
		return "", err
	}
	return doc.ID, nil
}

// provideAndRegister writes the ProvideAndRegisterDocumentSetRequest into body.
func (c *Client) provideAndRegister(body *etree.Element, kvnr string, doc Document, ssUniqueID, cid string) {
	var b metadataBuilder
	pnr := body.CreateElement("xds:ProvideAndRegisterDocumentSetRequest")
	rol := pnr.CreateElement("lcm:SubmitObjectsRequest").CreateElement("rim:RegistryObjectList")

	ss := rol.CreateElement("rim:RegistryPackage")
	ss.CreateAttr("id", submissionSetSymbolicID)
	ss.CreateAttr("objectType", objectTypePackage)
	addSlot(ss, "submissionTime", dtm(c.now()))
	c.author(&b, ss, submissionSetSymbolicID, schemeSSAuthor, doc.Author)
	b.addCode(ss, submissionSetSymbolicID, schemeSSContentType, withSystem(orDefault(doc.ContentTypeCode, DefaultContentTypeCode), SystemContentType))
	ssClass := ss.CreateElement("rim:Classification")
	ssClass.CreateAttr("classifiedObject", submissionSetSymbolicID)
	ssClass.CreateAttr("classificationNode", xds.NodeSubmissionSet)
	ssClass.CreateAttr("objectType", xds.ObjectTypeClassification)
	ssClass.CreateAttr("id", b.id())
	b.addExternalID(ss, submissionSetSymbolicID, xds.SchemeSSPatientID, patientID(kvnr), "XDSSubmissionSet.patientId")
	b.addExternalID(ss, submissionSetSymbolicID, xds.SchemeSSUniqueID, ssUniqueID, "XDSSubmissionSet.uniqueId")

	eo := rol.CreateElement("rim:ExtrinsicObject")
	eo.CreateAttr("id", doc.EntryUUID)
	eo.CreateAttr("mimeType", doc.MimeType)
	eo.CreateAttr("objectType", xds.ObjectTypeStable)
	created := doc.CreationTime
	if created.IsZero() {
		created = c.now()
	}
	addSlot(eo, "creationTime", dtm(created))
	lang := doc.LanguageCode
	if lang == "" {
		lang = "de-DE"
	}
	addSlot(eo, "languageCode", lang)
	if doc.FileName != "" {
		addSlot(eo, "URI", doc.FileName)
	}
	if !doc.ServiceStartTime.IsZero() {
		addSlot(eo, "serviceStartTime", dtm(doc.ServiceStartTime))
	}
	if !doc.ServiceStopTime.IsZero() {
		addSlot(eo, "serviceStopTime", dtm(doc.ServiceStopTime))
	}
	if doc.Title != "" {
		addLocalized(eo, "rim:Name", doc.Title)
	}
	if doc.Comments != "" {
		addLocalized(eo, "rim:Description", doc.Comments)
	}
	b.addCode(eo, doc.EntryUUID, xds.SchemeClassCode, withSystem(doc.ClassCode, SystemClassCode))
	b.addCode(eo, doc.EntryUUID, xds.SchemeConfidentiality, withSystem(orDefault(doc.ConfidentialityCode, DefaultConfidentialityCode), SystemConfidentiality))
	b.addCode(eo, doc.EntryUUID, xds.SchemeFormatCode, withSystem(orDefault(doc.FormatCode, DefaultFormatCode), SystemFormatCode))
	b.addCode(eo, doc.EntryUUID, xds.SchemeFacilityType, withSystem(orDefault(doc.HealthcareFacilityTypeCode, DefaultFacilityTypeCode), SystemFacilityType))
	b.addCode(eo, doc.EntryUUID, xds.SchemePracticeSetting, withSystem(orDefault(doc.PracticeSettingCode, DefaultPracticeSettingCode), SystemPracticeSetting))
	b.addCode(eo, doc.EntryUUID, xds.SchemeTypeCode, withSystem(doc.TypeCode, SystemTypeCode))
	c.author(&b, eo, doc.EntryUUID, schemeDEAuthor, doc.Author)
	b.addExternalID(eo, doc.EntryUUID, xds.SchemeDEPatientID, patientID(kvnr), "XDSDocumentEntry.patientId")
	b.addExternalID(eo, doc.EntryUUID, xds.SchemeDEUniqueID, doc.ID, "XDSDocumentEntry.uniqueId")

	member := rol.CreateElement("rim:Association")
	member.CreateAttr("associationType", xds.AssocHasMember)
	member.CreateAttr("sourceObject", submissionSetSymbolicID)
	member.CreateAttr("targetObject", doc.EntryUUID)
	member.CreateAttr("id", submissionSetAssociation)
	addSlot(member, "SubmissionSetStatus", "Original")
	if doc.Replaces != "" {
		rplc := rol.CreateElement("rim:Association")
		rplc.CreateAttr("associationType", xds.AssocRPLC)
		rplc.CreateAttr("sourceObject", doc.EntryUUID)
		rplc.CreateAttr("targetObject", doc.Replaces)
		rplc.CreateAttr("id", b.id())
	}

	d := pnr.CreateElement("xds:Document")
	d.CreateAttr("id", doc.EntryUUID)
	inc := d.CreateElement("xop:Include")
	inc.CreateAttr("xmlns:xop", wire.NSXOP)
	inc.CreateAttr("href", "cid:"+cid)
}

// withSystem fills in the code system a caller left empty.
func withSystem(c Code, system string) Code {
	if c.System == "" {
		c.System = system
	}
	return c
}

// Find lists the Approved documents of the record of kvnr (ITI-18 FindDocuments).
func (c *Client) Find(ctx context.Context, kvnr string) ([]DocumentEntry, error) {
	if err := c.check(kvnr); err != nil {
		return nil, err
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.query(ctx, kvnr, xds.QueryFindDocuments, map[string]string{
		"$XDSDocumentEntryPatientId": "'" + patientID(kvnr) + "'",
		"$XDSDocumentEntryStatus":    "('" + xds.StatusApproved + "')",
	})
}

// query runs a stored query with LeafClass results.
func (c *Client) query(ctx context.Context, kvnr, queryID string, params map[string]string) ([]DocumentEntry, error) {
	env, body, err := c.newEnvelope(xds.ActionITI18)
	if err != nil {
		return nil, err
	}
	req := body.CreateElement("query:AdhocQueryRequest")
	req.CreateElement("query:ResponseOption").CreateAttr("returnType", "LeafClass")
	aq := req.CreateElement("rim:AdhocQuery")
	aq.CreateAttr("id", queryID)
	for _, name := range []string{"$XDSDocumentEntryPatientId", "$XDSDocumentEntryStatus", "$XDSDocumentEntryUniqueId"} {
		if v, ok := params[name]; ok {
			addSlot(aq, name, v)
		}
	}
	ans, err := c.call(ctx, kvnr, xds.ActionITI18, env, false)
	if err != nil {
		return nil, err
	}
	if !wire.Is(ans.op, xds.NSQuery, "AdhocQueryResponse") {
		return nil, errors.New("epa: the answer to ITI-18 is not an AdhocQueryResponse")
	}
	if err := registryStatus(ans.op); err != nil {
		return nil, err
	}
	var out []DocumentEntry
	for _, eo := range wire.Children(wire.Child(ans.op, xds.NSRIM, "RegistryObjectList"), xds.NSRIM, "ExtrinsicObject") {
		out = append(out, readEntry(eo))
	}
	return out, nil
}

// Retrieve fetches the document documentID (its uniqueId) of the record of kvnr with its
// metadata: ITI-18 GetDocuments for the repository, then ITI-43.
func (c *Client) Retrieve(ctx context.Context, kvnr, documentID string) (Document, error) {
	if err := c.check(kvnr); err != nil {
		return Document{}, err
	}
	if documentID == "" || strings.ContainsAny(documentID, "'()") {
		return Document{}, ErrDocumentNotFound
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	entries, err := c.query(ctx, kvnr, xds.QueryGetDocuments, map[string]string{
		"$XDSDocumentEntryUniqueId": "('" + documentID + "')",
	})
	if err != nil {
		return Document{}, err
	}
	if len(entries) == 0 {
		return Document{}, ErrDocumentNotFound
	}
	e := entries[0]

	env, body, err := c.newEnvelope(xds.ActionITI43)
	if err != nil {
		return Document{}, err
	}
	dr := body.CreateElement("xds:RetrieveDocumentSetRequest").CreateElement("xds:DocumentRequest")
	if e.HomeCommunityID != "" {
		dr.CreateElement("xds:HomeCommunityId").SetText(e.HomeCommunityID)
	}
	dr.CreateElement("xds:RepositoryUniqueId").SetText(e.RepositoryID)
	dr.CreateElement("xds:DocumentUniqueId").SetText(e.ID)
	ans, err := c.call(ctx, kvnr, xds.ActionITI43, env, true)
	if err != nil {
		return Document{}, err
	}
	if !wire.Is(ans.op, xds.NSXDS, "RetrieveDocumentSetResponse") {
		return Document{}, errors.New("epa: the answer to ITI-43 is not a RetrieveDocumentSetResponse")
	}
	if err := registryStatus(wire.Child(ans.op, xds.NSRS, "RegistryResponse")); err != nil {
		return Document{}, err
	}
	for _, resp := range wire.Children(ans.op, xds.NSXDS, "DocumentResponse") {
		if wire.Text(wire.Child(resp, xds.NSXDS, "DocumentUniqueId")) != e.ID {
			continue
		}
		content, err := documentContent(wire.Child(resp, xds.NSXDS, "Document"), ans.attachments)
		if err != nil {
			return Document{}, err
		}
		doc := e.document()
		if mt := wire.Text(wire.Child(resp, xds.NSXDS, "mimeType")); mt != "" {
			doc.MimeType = mt
		}
		doc.Content = content
		return doc, nil
	}
	return Document{}, ErrDocumentNotFound
}

// registryStatus turns a RegistryResponse (or AdhocQueryResponse) that is not Success into
// *XDSError.
func registryStatus(rr *etree.Element) error {
	if rr == nil {
		return errors.New("epa: the answer has no RegistryResponse")
	}
	status := rr.SelectAttrValue("status", "")
	if status == xds.StatusSuccess {
		return nil
	}
	e := &XDSError{Status: status}
	for _, re := range wire.Children(wire.Child(rr, xds.NSRS, "RegistryErrorList"), xds.NSRS, "RegistryError") {
		e.Errors = append(e.Errors, RegistryError{
			Code:     re.SelectAttrValue("errorCode", ""),
			Context:  re.SelectAttrValue("codeContext", ""),
			Severity: re.SelectAttrValue("severity", ""),
			Location: re.SelectAttrValue("location", ""),
		})
	}
	return e
}

// readEntry reads an ExtrinsicObject.
func readEntry(eo *etree.Element) DocumentEntry {
	e := DocumentEntry{
		EntryUUID:       eo.SelectAttrValue("id", ""),
		MimeType:        eo.SelectAttrValue("mimeType", ""),
		HomeCommunityID: eo.SelectAttrValue("home", ""),
		Status:          eo.SelectAttrValue("status", ""),
	}
	e.Status = e.Status[strings.LastIndex(e.Status, ":")+1:]
	slot := func(name string) string {
		for _, sl := range wire.Children(eo, xds.NSRIM, "Slot") {
			if sl.SelectAttrValue("name", "") == name {
				return wire.Text(wire.Child(wire.Child(sl, xds.NSRIM, "ValueList"), xds.NSRIM, "Value"))
			}
		}
		return ""
	}
	e.RepositoryID = strings.TrimPrefix(slot("repositoryUniqueId"), "urn:oid:")
	e.LanguageCode = slot("languageCode")
	e.FileName = slot("URI")
	e.CreationTime = parseDTM(slot("creationTime"))
	e.Size, _ = strconv.ParseInt(slot("size"), 10, 64)
	e.Hash = slot("hash")
	e.Title = localizedValue(wire.Child(eo, xds.NSRIM, "Name"))
	e.Comments = localizedValue(wire.Child(eo, xds.NSRIM, "Description"))
	for _, cl := range wire.Children(eo, xds.NSRIM, "Classification") {
		code := Code{Code: cl.SelectAttrValue("nodeRepresentation", ""), Display: localizedValue(wire.Child(cl, xds.NSRIM, "Name"))}
		for _, sl := range wire.Children(cl, xds.NSRIM, "Slot") {
			if sl.SelectAttrValue("name", "") == "codingScheme" {
				code.System = wire.Text(wire.Child(wire.Child(sl, xds.NSRIM, "ValueList"), xds.NSRIM, "Value"))
			}
		}
		switch cl.SelectAttrValue("classificationScheme", "") {
		case xds.SchemeClassCode:
			e.ClassCode = code
		case xds.SchemeTypeCode:
			e.TypeCode = code
		case xds.SchemeFormatCode:
			e.FormatCode = code
		case xds.SchemeConfidentiality:
			e.ConfidentialityCodes = append(e.ConfidentialityCodes, code)
		case xds.SchemeFacilityType:
			e.HealthcareFacilityTypeCode = code
		case xds.SchemePracticeSetting:
			e.PracticeSettingCode = code
		case schemeDEAuthor:
			for _, sl := range wire.Children(cl, xds.NSRIM, "Slot") {
				if sl.SelectAttrValue("name", "") != "authorInstitution" {
					continue
				}
				xon := strings.Split(wire.Text(wire.Child(wire.Child(sl, xds.NSRIM, "ValueList"), xds.NSRIM, "Value")), "^")
				e.AuthorInstitution = hl7Unescape(xon[0])
				if len(xon) >= 10 {
					e.AuthorTelematikID = hl7Unescape(xon[9])
				}
			}
		}
	}
	for _, x := range wire.Children(eo, xds.NSRIM, "ExternalIdentifier") {
		if x.SelectAttrValue("identificationScheme", "") == xds.SchemeDEUniqueID {
			e.ID = x.SelectAttrValue("value", "")
		}
	}
	return e
}

func localizedValue(e *etree.Element) string {
	if ls := wire.Child(e, xds.NSRIM, "LocalizedString"); ls != nil {
		return ls.SelectAttrValue("value", "")
	}
	return ""
}

// document turns an entry's metadata into a Document (without content).
func (e DocumentEntry) document() Document {
	d := Document{
		ID:                         e.ID,
		EntryUUID:                  e.EntryUUID,
		Title:                      e.Title,
		Comments:                   e.Comments,
		MimeType:                   e.MimeType,
		LanguageCode:               e.LanguageCode,
		FileName:                   e.FileName,
		ClassCode:                  e.ClassCode,
		TypeCode:                   e.TypeCode,
		FormatCode:                 e.FormatCode,
		HealthcareFacilityTypeCode: e.HealthcareFacilityTypeCode,
		PracticeSettingCode:        e.PracticeSettingCode,
		CreationTime:               e.CreationTime,
	}
	if len(e.ConfidentialityCodes) > 0 {
		d.ConfidentialityCode = e.ConfidentialityCodes[0]
	}
	return d
}
