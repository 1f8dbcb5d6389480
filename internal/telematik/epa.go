package telematik

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/ti/epa"
)

// kvnrParam reads RED's patient parameter (the KVNR); a missing one is RED's 404.
func kvnrParam(q url.Values) (string, error) {
	kvnr := q.Get("patient")
	if kvnr == "" {
		return "", fhir.Fail(fhir.CodeNotFound, "patient", "name the person: patient=KVNR (the insurance number on the eGK)")
	}
	if err := ident.KVNR(kvnr); err != nil {
		return "", fhir.Fail(fhir.CodeValue, "patient", "%s", err.Error())
	}
	return kvnr, nil
}

// epaStatus asks the ePA whether the person has a record and whether this practice may use it.
func (s *Service) epaStatus(ctx context.Context, c *epa.Client, kvnr string) (epa.Status, error) {
	var st epa.Status
	err := s.call(ctx, "ePA", func(ctx context.Context) (err error) {
		st, err = c.Status(ctx, kvnr)
		if errors.Is(err, epa.ErrNoRecord) {
			st, err = epa.Status{}, nil
		}
		return err
	})
	return st, err
}

// getEpaStatus answers $getepastatus: HTTP 201 (as RED does) with the record's home community
// and the practice's authorisation.
func (s *Service) getEpaStatus(ctx context.Context, q url.Values, _ *etree.Element) (Answer, error) {
	kvnr, err := kvnrParam(q)
	if err != nil {
		return Answer{}, err
	}
	c, err := s.epaAs(ctx)
	if err != nil {
		return Answer{}, err
	}
	st, err := s.epaStatus(ctx, c, kvnr)
	if err != nil {
		return Answer{}, err
	}
	res := etree.NewElement("result")
	hc := res.CreateElement("homeCommunity")
	text(hc, "id", st.HomeCommunityID)
	auth := res.CreateElement("authorizationState")
	switch {
	case !st.RecordExists:
		text(hc, "status", "ERROR")
		text(hc, "message", "this person has no ePA")
		text(auth, "status", "ERROR")
	case !st.Authorized:
		text(hc, "status", "OK")
		text(auth, "status", "ERROR")
		text(auth, "message", "the practice is not authorised for this ePA")
	default:
		text(hc, "status", "OK")
		text(auth, "status", "OK")
		if !st.AuthorizedUntil.IsZero() {
			text(auth, "validTo", fhir.Instant(st.AuthorizedUntil))
		}
	}
	return Answer{http.StatusCreated, res}, nil
}

// epaUpload answers POST TI?action=$epaupload&patient=KVNR with a bundle of DocumentReferences:
// each attachment goes into the person's ePA (ITI-41). The status is checked first, as RED
// re-checks it on every upload. Answer: 201 with one <document> per uploaded attachment.
func (s *Service) epaUpload(ctx context.Context, q url.Values, body *etree.Element) (Answer, error) {
	kvnr, err := kvnrParam(q)
	if err != nil {
		return Answer{}, err
	}
	if body == nil || body.Tag != "Bundle" {
		return Answer{}, fhir.Fail(fhir.CodeStructure, "Bundle", "send a Bundle with the DocumentReferences to upload")
	}
	var docs []epa.Document
	var issues fhir.Issues
	for i, e := range body.SelectElements("entry") {
		res := fhir.ResourceOf(fhir.Child(e, "resource"))
		if res == nil || res.Tag != "DocumentReference" {
			continue
		}
		at := "Bundle.entry[" + strconv.Itoa(i) + "].resource.content.attachment"
		att := res.FindElement("content/attachment")
		data, derr := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(fhir.ChildValue(att, "data")), ""))
		mime := fhir.ChildValue(att, "contentType")
		switch {
		case att == nil || fhir.ChildValue(att, "data") == "":
			issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeRequired, Expression: at + ".data", Diagnostics: "the document itself is required (base64 in attachment.data)"})
			continue
		case derr != nil:
			issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeValue, Expression: at + ".data", Diagnostics: "attachment.data is not valid base64"})
			continue
		case mime == "":
			issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeRequired, Expression: at + ".contentType", Diagnostics: "contentType is required"})
			continue
		}
		title := fhir.ChildValue(att, "title")
		if title == "" {
			title = fhir.ChildValue(res, "description")
		}
		docs = append(docs, epa.Document{
			Title: title, MimeType: mime, Content: data, FileName: fhir.ChildValue(att, "title"),
			ClassCode: epa.Code{Code: "BEF", System: epa.SystemClassCode, Display: "Ergebnisse Diagnostik"},
			TypeCode:  epa.Code{Code: "BERI", System: epa.SystemTypeCode, Display: "Arztberichte"},
		})
	}
	if len(issues) > 0 {
		return Answer{}, fhir.Reject(issues)
	}
	if len(docs) == 0 {
		return Answer{}, fhir.Fail(fhir.CodeRequired, "Bundle.entry", "the bundle holds no DocumentReference to upload")
	}
	c, err := s.epaAs(ctx)
	if err != nil {
		return Answer{}, err
	}
	st, err := s.epaStatus(ctx, c, kvnr)
	if err != nil {
		return Answer{}, err
	}
	switch {
	case !st.RecordExists:
		return Answer{}, fhir.Fail(fhir.CodeNotFound, "patient", "this person has no ePA")
	case !st.Authorized:
		return Answer{}, fhir.Fail(fhir.CodeForbidden, "patient", "the practice is not authorised for this ePA")
	}
	res := etree.NewElement("result")
	for _, d := range docs {
		var id string
		if err := s.call(ctx, "ePA", func(ctx context.Context) (err error) {
			id, err = c.Upload(ctx, kvnr, d)
			return err
		}); err != nil {
			return Answer{}, err
		}
		e := res.CreateElement("document")
		text(e, "id", id)
		text(e, "status", "OK")
	}
	return Answer{http.StatusCreated, res}, nil
}
