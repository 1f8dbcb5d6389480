package api

import (
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/fhirjson"
)

// JSONContentType is what red answers with in FHIR JSON.
const JSONContentType = "application/fhir+json; charset=UTF-8"

// plainJSONContentType is RED's own answers (ConnectorResponse, Prescriptions) in JSON: not FHIR.
const plainJSONContentType = "application/json; charset=UTF-8"

// FHIR modes of a server (Server.FHIRMode) and a request (Prefer: handling=…).
const (
	ModeRED    = "red"    // RED's shapes: the default
	ModeStrict = "strict" // the FHIR specification's shapes for clients not written against RED
)

// The media types red writes; _format also takes the short names xml and json. Bodies in JSON
// are read only with a FHIR JSON type (jsonBodyTypes): plain application/json stays a 415, as in RED.
var (
	xmlTypes      = []string{"application/fhir+xml", "application/xml+fhir", "application/xml", "text/xml"}
	jsonTypes     = []string{"application/fhir+json", "application/json+fhir", "application/json", "text/json"}
	jsonBodyTypes = []string{"application/fhir+json", "application/json+fhir"}
)

// supported lists the formats for a 406 answer.
const supported = "application/fhir+xml (or application/xml, text/xml; _format=xml) and application/fhir+json (or application/json; _format=json)"

// format is how one request is answered.
type format struct {
	json   bool   // FHIR JSON instead of XML
	strict bool   // the specification's shapes instead of RED's
	base   string // the server's absolute base, e.g. http://127.0.0.1:29221
	tenant string // the tenant served, whose resources' URLs start with base/tenant
}

// formatWriter carries the request's format to the write functions.
type formatWriter struct {
	http.ResponseWriter
	f format
}

// Unwrap lets http.ResponseController reach the connection.
func (w *formatWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// negotiate decides the answer's format once per request — _format wins over Accept; without
// either, or with only wildcards, a FHIR JSON body gets a JSON answer; Prefer: handling=strict or lenient overrides the
// server's FHIR mode — and answers 406 when the client accepts nothing red writes. _format is
// taken off the query so that the use cases never see it.
func (s *Server) negotiate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := s.formatOf(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if q := r.URL.Query(); q.Has("_format") {
			q.Del("_format")
			u := *r.URL
			u.RawQuery = q.Encode()
			r = r.Clone(r.Context())
			r.URL = &u
			r.RequestURI = u.RequestURI()
		}
		next.ServeHTTP(&formatWriter{ResponseWriter: w, f: f}, r)
	})
}

// formatOf reads the request's _format, Accept, Content-Type and Prefer.
func (s *Server) formatOf(r *http.Request) (format, error) {
	f := format{strict: s.FHIRMode == ModeStrict, base: "http://" + r.Host, tenant: s.Tenant}
	for _, p := range strings.Split(r.Header.Get("Prefer"), ",") {
		switch strings.ReplaceAll(strings.TrimSpace(p), " ", "") {
		case "handling=strict":
			f.strict = true
		case "handling=lenient":
			f.strict = false
		}
	}
	if v := r.URL.Query().Get("_format"); v != "" {
		v = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(v)), " ", "+") // a + may arrive as a space
		if mt, _, err := mime.ParseMediaType(v); err == nil {
			v = mt
		}
		switch {
		case v == "json" || slices.Contains(jsonTypes, v):
			f.json = true
		case v == "xml" || slices.Contains(xmlTypes, v):
		default:
			return f, fhir.Fail(fhir.CodeNotAcceptable, "_format", "_format %s is not a format red writes; it writes %s", fhir.Quote(v), supported)
		}
		return f, nil
	}
	json, wildcard, ok := preferJSON(r.Header.Get("Accept"))
	if !ok {
		return f, fhir.Fail(fhir.CodeNotAcceptable, "", "Accept names no format red writes; it writes %s", supported)
	}
	if wildcard {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		json = slices.Contains(jsonBodyTypes, mt)
	}
	f.json = json
	return f, nil
}

// preferJSON reads an Accept header: whether JSON is preferred (highest q, then first named),
// whether the best match is a wildcard or no Accept at all (the body's format decides), and
// whether anything red writes is acceptable.
func preferJSON(accept string) (json, wildcard, ok bool) {
	if strings.TrimSpace(accept) == "" {
		return false, true, true
	}
	best := -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		wild := mt == "*/*" || mt == "application/*"
		isJSON := slices.Contains(jsonTypes, mt)
		isXML := slices.Contains(xmlTypes, mt) || wild || mt == "text/*"
		if q <= 0 || !isJSON && !isXML || q <= best {
			continue
		}
		best, json, wildcard, ok = q, isJSON, wild, true
	}
	return json, wildcard, ok
}

// formatFor is the format of the answer written to w: the negotiated one, or — for an error
// written before negotiation (the guards, a 406) — what the request asks for if it can be had.
func (s *Server) formatFor(w http.ResponseWriter, r *http.Request) format {
	if fw, ok := w.(*formatWriter); ok {
		return fw.f
	}
	f, _ := s.formatOf(r)
	return f
}

// negotiated is the format carried by w; RED's XML when w did not pass negotiation.
func negotiated(w http.ResponseWriter) format {
	if fw, ok := w.(*formatWriter); ok {
		return fw.f
	}
	return format{}
}

// writeFHIR writes a FHIR answer in the negotiated format; in strict mode RED's searchset links
// and Task list take the specification's shape (so does JSON, which has no form for them).
func writeFHIR(w http.ResponseWriter, status int, e *etree.Element) {
	f := negotiated(w)
	if f.strict || f.json {
		e = f.standard(e)
	}
	if !f.json {
		write(w, status, ContentType, fhir.Document(e))
		return
	}
	data, err := fhirjson.Marshal(e)
	if err != nil {
		// red wrote something R4 does not define: say so rather than send broken JSON
		issues, _ := fhir.Explain(err)
		oo := fhir.OperationOutcome(append(fhir.Issues{{Severity: fhir.SeverityFatal, Code: fhir.CodeException,
			Diagnostics: "the answer has no FHIR JSON form; ask for XML (_format=xml)"}}, issues...))
		data, _ = fhirjson.Marshal(oo)
		status = http.StatusInternalServerError
	}
	write(w, status, JSONContentType, data)
}

// writePlain writes one of RED's own answers (ConnectorResponse, Prescriptions, the Task list):
// RED's Task list becomes a standard searchset Bundle where the format asks for one; in strict
// mode a failure is an OperationOutcome; in JSON the rest is plain JSON.
func writePlain(w http.ResponseWriter, status int, contentType string, e *etree.Element) {
	f := negotiated(w)
	switch {
	case (f.strict || f.json) && isTaskList(e):
		writeFHIR(w, status, e)
	case f.strict && status >= 400:
		writeFHIR(w, status, outcomeOf(status, e))
	case f.json:
		write(w, status, plainJSONContentType, fhirjson.Plain(e))
	default:
		write(w, status, contentType, fhir.PlainDocument(e))
	}
}

// outcomeOf is RED's error answer (<ConnectorResponse> with <Error>, <Status>, …) as an
// OperationOutcome: its texts become the diagnostics.
func outcomeOf(status int, e *etree.Element) *etree.Element {
	code := fhir.CodeProcessing
	switch {
	case status >= 500:
		code = fhir.CodeException
	case status == http.StatusBadRequest:
		code = fhir.CodeInvalid
	}
	var texts []string
	for _, c := range e.ChildElements() {
		if t := strings.TrimSpace(c.Text()); t != "" && len(c.ChildElements()) == 0 {
			texts = append(texts, c.Tag+": "+t)
		}
	}
	return fhir.OperationOutcome(fhir.Issues{{Severity: fhir.SeverityError, Code: code, Diagnostics: strings.Join(texts, "; ")}})
}

// isTaskList reports whether e is RED's Task list: a Bundle without namespace whose entries hold
// their Tasks directly.
func isTaskList(e *etree.Element) bool {
	if e.Tag != "Bundle" || e.SelectAttr("xmlns") != nil {
		return false
	}
	for _, en := range e.SelectElements("entry") {
		if en.SelectElement("resource") == nil {
			return true
		}
	}
	return false
}

// redRelations are the names RED gives its searchset links.
var redRelations = []string{"self", "first", "previous", "next", "last"}

// standard rewrites RED's shapes into the specification's: a searchset's <self>, <next>, … become
// Bundle.link (absolute URLs in strict mode), RED's Task list gets the namespace, entry.resource
// and fullUrl. Other answers are returned as they are.
func (f format) standard(e *etree.Element) *etree.Element {
	if e.Tag != "Bundle" || fhir.ChildValue(e, "type") != "searchset" {
		return e
	}
	tasks := isTaskList(e)
	if !tasks && slices.IndexFunc(e.ChildElements(), func(c *etree.Element) bool { return slices.Contains(redRelations, c.Tag) }) < 0 {
		return e
	}
	e = e.Copy()
	if tasks {
		e.CreateAttr("xmlns", fhir.Namespace)
		for _, en := range e.SelectElements("entry") {
			res := fhir.ResourceOf(en)
			if res == nil || en.SelectElement("resource") != nil {
				continue
			}
			en.RemoveChild(res)
			fhir.SetValue(en.CreateElement("fullUrl"), f.fullURL("/"+res.Tag+"/"+fhir.ChildValue(res, "id")))
			en.CreateElement("resource").AddChild(res)
		}
	}
	at := fhir.IndexAfter(e, "id", "meta", "implicitRules", "language", "identifier", "type", "timestamp", "total")
	var links []*etree.Element
	for _, c := range e.ChildElements() {
		if !slices.Contains(redRelations, c.Tag) {
			continue
		}
		e.RemoveChild(c)
		link := etree.NewElement("link")
		fhir.SetValue(link.CreateElement("relation"), fhir.ChildValue(c, "relation"))
		fhir.SetValue(link.CreateElement("url"), f.link(fhir.ChildValue(c, "url")))
		links = append(links, link)
	}
	for i, l := range links {
		e.InsertChildAt(at+i, l)
	}
	for _, en := range e.SelectElements("entry") {
		if fu := en.SelectElement("fullUrl"); fu != nil && !tasks {
			fhir.SetValue(fu, f.fullURL(fhir.Value(fu)))
		}
	}
	return e
}

// link is a paging link: absolute in strict mode (RED's links start with /{tenant}/).
func (f format) link(u string) string {
	if !f.strict || strings.Contains(u, "://") {
		return u
	}
	return f.base + "/" + strings.TrimPrefix(u, "/")
}

// fullURL is an entry's fullUrl: RED's /{type}/{id}, in strict mode base/{tenant}/{type}/{id}.
func (f format) fullURL(u string) string {
	if !f.strict || strings.Contains(u, "://") {
		return u
	}
	return f.base + "/" + f.tenant + "/" + strings.TrimPrefix(u, "/")
}

// writeBundleAnswer answers POST /{tenant}/Bundle. In strict mode an uploaded Patientenakte (a
// bundle of type history: neither transaction nor batch, which answer 200) is a create: 201
// Created with the Bundle's Location (DELETE there removes what it created).
func (s *Server) writeBundleAnswer(w http.ResponseWriter, posted, resp *etree.Element) {
	status := http.StatusOK
	if f := negotiated(w); f.strict && fhir.ChildValue(posted, "type") == "history" {
		w.Header().Set("Location", f.base+"/"+s.Tenant+"/Bundle/"+url.PathEscape(fhir.ChildValue(resp, "id")))
		status = http.StatusCreated
	}
	writeXML(w, status, resp)
}
