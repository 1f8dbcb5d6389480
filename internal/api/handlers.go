package api

import (
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/beevik/etree"
	"github.com/go-chi/chi/v5"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/records"
)

// ContentType is what red answers with.
const ContentType = "application/fhir+xml; charset=UTF-8"

var acceptedTypes = map[string]bool{"application/fhir+xml": true, "application/xml+fhir": true, "application/xml": true, "text/xml": true}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func writeXML(w http.ResponseWriter, status int, e *etree.Element) {
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(fhir.Document(e))
}

// body reads a FHIR XML request body within the server's limits.
func (s *Server) body(w http.ResponseWriter, r *http.Request) (*etree.Element, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !acceptedTypes[mt] {
		return nil, transportError(http.StatusUnsupportedMediaType, fhir.CodeNotSupported, "send FHIR XML with Content-Type: application/fhir+xml; charset=UTF-8")
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.Limits.MaxBytes))
	if err != nil {
		return nil, err
	}
	return fhir.Parse(data, s.Limits)
}

func (s *Server) postBundle(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Has("action") {
		return fhir.Fail(fhir.CodeNotSupported, "action", "no Bundle actions are available on this server yet")
	}
	b, err := s.body(w, r)
	if err != nil {
		return err
	}
	resp, err := s.Records.PostBundle(r.Context(), b)
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, resp)
	return nil
}

func (s *Server) deleteBundle(w http.ResponseWriter, r *http.Request) error {
	resp, err := s.Records.DeleteBundle(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, resp)
	return nil
}

// resourceType is the {type} of the path when red keeps that type; searchable ones are a subset.
func resourceType(r *http.Request, search bool) (string, error) {
	typ := chi.URLParam(r, "type")
	if typ == "PractitioneRole" { // the spelling in RED's own documentation
		typ = "PractitionerRole"
	}
	if (search && !records.Supported(typ)) || !records.Stored(typ) {
		return "", fhir.Fail(fhir.CodeNotFound, "", "resource type %q is not served here; GET /metadata lists what is", typ)
	}
	return typ, nil
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) error {
	typ, err := resourceType(r, true)
	if err != nil {
		return err
	}
	set, err := s.Records.Search(r.Context(), typ, r.URL.Query())
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, set.Element())
	return nil
}

func (s *Server) read(w http.ResponseWriter, r *http.Request) error {
	typ, err := resourceType(r, false)
	if err != nil {
		return err
	}
	res, err := s.Records.Read(r.Context(), typ, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeResource(w, res)
	return nil
}

func (s *Server) readVersion(w http.ResponseWriter, r *http.Request) error {
	typ, err := resourceType(r, false)
	if err != nil {
		return err
	}
	res, err := s.Records.ReadVersion(r.Context(), typ, chi.URLParam(r, "id"), chi.URLParam(r, "version"))
	if err != nil {
		return err
	}
	writeResource(w, res)
	return nil
}

func writeResource(w http.ResponseWriter, res *etree.Element) {
	if v := fhir.ChildValue(res, "meta", "versionId"); v != "" {
		w.Header().Set("ETag", `W/"`+v+`"`)
	}
	writeXML(w, http.StatusOK, res)
}
