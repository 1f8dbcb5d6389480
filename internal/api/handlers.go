package api

import (
	"mime"
	"net/http"
	"slices"
	"strconv"

	"github.com/beevik/etree"
	"github.com/go-chi/chi/v5"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/fhirjson"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/telematik"
)

// ContentType is what red answers with.
const ContentType = "application/fhir+xml; charset=UTF-8"

var acceptedTypes = map[string]bool{"application/fhir+xml": true, "application/xml+fhir": true, "application/xml": true, "text/xml": true}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// writeXML answers with a FHIR resource in the negotiated format (negotiate.go).
func writeXML(w http.ResponseWriter, status int, e *etree.Element) {
	writeFHIR(w, status, e)
}

// writeBody answers with RED's plain (non-FHIR) XML, such as ConnectorResponse, or the negotiated
// format's form of it (negotiate.go).
func writeBody(w http.ResponseWriter, status int, contentType string, e *etree.Element) {
	writePlain(w, status, contentType, e)
}

// write answers with body, its length said up front: the client reads one piece, not chunks.
func write(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// body reads a FHIR XML or JSON request body within the server's limits.
func (s *Server) body(w http.ResponseWriter, r *http.Request) (*etree.Element, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	json := err == nil && slices.Contains(jsonBodyTypes, mt)
	if err != nil || !acceptedTypes[mt] && !json {
		return nil, fhir.Fail(fhir.CodeUnsupportedMediaType, "", "send FHIR XML with Content-Type: application/fhir+xml; charset=UTF-8, or FHIR JSON with Content-Type: application/fhir+json")
	}
	data, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	if json {
		return fhirjson.Unmarshal(r.Context(), data, s.Limits)
	}
	return fhir.ParseContext(r.Context(), data, s.Limits)
}

func (s *Server) postBundle(w http.ResponseWriter, r *http.Request) error {
	switch action := r.URL.Query().Get("action"); action {
	case "":
	case "$signpdf":
		return s.signPDF(w, r)
	case "$createerp":
		return s.createERP(w, r)
	case "$dispense":
		return s.dispense(w, r)
	default:
		return fhir.Fail(fhir.CodeNotSupported, "action", "unknown Bundle action %q; known: $createerp, $dispense, $signpdf", action)
	}
	b, err := s.body(w, r)
	if err != nil {
		return err
	}
	resp, err := s.Records.PostBundle(r.Context(), b)
	if err != nil {
		return err
	}
	s.writeBundleAnswer(w, b, resp)
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
	if redXML(w) {
		doc, err := s.Records.SearchDocument(r.Context(), typ, r.URL.Query())
		if err != nil {
			return err
		}
		write(w, http.StatusOK, ContentType, doc)
		return nil
	}
	set, err := s.Records.Search(r.Context(), typ, r.URL.Query())
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, set.Element())
	return nil
}

// auditEvents answers GET /{tenant}/AuditEvent: the audit trail, for admins.
func (s *Server) auditEvents(w http.ResponseWriter, r *http.Request) error {
	set, err := s.AuditEvents.Search(r.Context(), r.URL.Query())
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
	if redXML(w) {
		doc, version, err := s.Records.ReadDocument(r.Context(), typ, chi.URLParam(r, "id"))
		if err != nil {
			return err
		}
		w.Header().Set("ETag", `W/"`+itoa(version)+`"`)
		write(w, http.StatusOK, ContentType, doc)
		return nil
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

// redXML reports whether the answer is RED's XML (neither JSON nor strict FHIR), which records
// writes from the stored bytes without trees.
func redXML(w http.ResponseWriter) bool {
	f := negotiated(w)
	return !f.strict && !f.json
}

func writeResource(w http.ResponseWriter, res *etree.Element) {
	if v := fhir.ChildValue(res, "meta", "versionId"); v != "" {
		w.Header().Set("ETag", `W/"`+v+`"`)
	}
	writeXML(w, http.StatusOK, res)
}

// signPDF hands the raw body to the signature action: RED answers unreadable input with its own
// ConnectorResponse, not an OperationOutcome.
func (s *Server) signPDF(w http.ResponseWriter, r *http.Request) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	a, err := s.TI.SignPDF(r.Context(), r.URL.Query(), data)
	if err != nil {
		return err
	}
	writeBody(w, a.Status, "application/xml; charset=UTF-8", a.Body)
	return nil
}

// createERP signs and sends one prescription at once.
func (s *Server) createERP(w http.ResponseWriter, r *http.Request) error {
	b, err := s.body(w, r)
	if err != nil {
		return err
	}
	a, err := s.TI.CreateERP(r.Context(), r.URL.Query(), b)
	if err != nil {
		return err
	}
	writeBody(w, a.Status, "application/xml; charset=UTF-8", a.Body)
	return nil
}

// tasks answers GET /{tenant}/Task, the e-prescription Task polling, in RED's simplified shape,
// and the Task actions ?action=$accept, $reject, $abort, $receipt.
func (s *Server) tasks(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if action := q.Get("action"); action != "" {
		a, err := s.TI.TaskAction(r.Context(), action, q)
		if err != nil {
			return err
		}
		writeAnswer(w, a)
		return nil
	}
	a, err := s.TI.Tasks(r.Context(), q)
	if err != nil {
		return err
	}
	writeBody(w, a.Status, "application/xml; charset=UTF-8", a.Body)
	return nil
}

// communicationActions are the actions on /{tenant}/Communication with their methods.
var communicationActions = map[string]string{"$received": http.MethodGet, "$reply": http.MethodPost}

// communications answers the pharmacy's messages: GET ?action=$received, POST ?action=$reply.
func (s *Server) communications(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	action := q.Get("action")
	method, ok := communicationActions[action]
	switch {
	case action == "":
		return fhir.Fail(fhir.CodeRequired, "action", "name an action: $received (GET) or $reply (POST)")
	case !ok:
		return fhir.Fail(fhir.CodeNotSupported, "action", "unknown Communication action %q; known: $received (GET), $reply (POST)", action)
	case method != r.Method:
		return fhir.Fail(fhir.CodeMethodNotAllowed, "", "%s is called with %s", action, method)
	}
	var a telematik.Answer
	var err error
	if action == "$received" {
		a, err = s.TI.Received(r.Context(), q)
	} else {
		var body *etree.Element
		if body, err = s.body(w, r); err != nil {
			return err
		}
		a, err = s.TI.Reply(r.Context(), q, body)
	}
	if err != nil {
		return err
	}
	writeXML(w, a.Status, a.Body)
	return nil
}

// tiAction runs GET or POST /{tenant}/TI?action=….
func (s *Server) tiAction(w http.ResponseWriter, r *http.Request) error {
	if m := telematik.Method(r.URL.Query().Get("action")); m != "" && m != r.Method {
		return fhir.Fail(fhir.CodeMethodNotAllowed, "", "this action is called with %s", m)
	}
	var body *etree.Element
	if r.Method == http.MethodPost {
		var err error
		if body, err = s.body(w, r); err != nil {
			return err
		}
	}
	q := r.URL.Query()
	a, err := s.TI.Do(r.Context(), q.Get("action"), q, body)
	if err != nil {
		return err
	}
	if a.Body.Tag == "Bundle" || a.Body.Tag == "OperationOutcome" {
		writeXML(w, a.Status, a.Body)
		return nil
	}
	writeBody(w, a.Status, "application/xml; charset=UTF-8", a.Body)
	return nil
}

// dispense records a pharmacy's dispensation and closes the Task (Bundle?action=$dispense).
func (s *Server) dispense(w http.ResponseWriter, r *http.Request) error {
	b, err := s.body(w, r)
	if err != nil {
		return err
	}
	a, err := s.TI.Dispense(r.Context(), r.URL.Query(), b)
	if err != nil {
		return err
	}
	writeAnswer(w, a)
	return nil
}

// pharmacyTask answers GET /{tenant}/Task/{id}: a pharmacy's prescription with its Task.
func (s *Server) pharmacyTask(w http.ResponseWriter, r *http.Request) error {
	a, err := s.TI.PharmacyTask(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeAnswer(w, a)
	return nil
}

// writeAnswer writes a FHIR answer, or only the status when it has no body (204).
func writeAnswer(w http.ResponseWriter, a telematik.Answer) {
	if a.Body == nil {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(a.Status)
		return
	}
	writeXML(w, a.Status, a.Body)
}
