package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/notify"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/telematik"
)

// metadata answers GET /metadata and GET /{tenant}/metadata with a CapabilityStatement of exactly
// what is implemented.
func (s *Server) metadata(w http.ResponseWriter, _ *http.Request) error {
	writeXML(w, http.StatusOK, s.capabilities())
	return nil
}

func (s *Server) capabilities() *etree.Element {
	cs := etree.NewElement("CapabilityStatement")
	val := func(parent *etree.Element, tag, v string) *etree.Element {
		e := parent.CreateElement(tag)
		fhir.SetValue(e, v)
		return e
	}
	val(cs, "status", "active")
	val(cs, "date", time.Now().UTC().Format("2006-01-02"))
	val(cs, "kind", "instance")
	sw := cs.CreateElement("software")
	val(sw, "name", "red")
	if s.Version != "" {
		val(sw, "version", s.Version)
	}
	val(cs, "fhirVersion", "4.0.1")
	val(cs, "format", "application/fhir+xml")
	val(cs, "format", "application/fhir+json")
	rest := cs.CreateElement("rest")
	val(rest, "mode", "server")
	val(rest, "documentation", "Paths are prefixed with the tenant alias: /{tenant}/{type}. POST /{tenant}/Bundle takes a KBV AWS Patientenakte bundle (type history), a transaction or a batch; DELETE /{tenant}/Bundle/{id} removes what that bundle created. Any other resource type a Patientenakte carries is stored and read by id.")
	bundle := rest.CreateElement("resource")
	val(bundle, "type", "Bundle")
	val(bundle.CreateElement("interaction"), "code", "create")
	val(bundle.CreateElement("interaction"), "code", "delete")
	for _, typ := range records.Types() {
		res := rest.CreateElement("resource")
		val(res, "type", typ)
		for _, code := range []string{"read", "vread", "search-type"} {
			val(res.CreateElement("interaction"), "code", code)
		}
		val(res, "versioning", "versioned")
		for _, p := range records.Params(typ) {
			sp := res.CreateElement("searchParam")
			val(sp, "name", p)
			val(sp, "type", records.ParamType(typ, p))
		}
	}
	if s.Subscriptions != nil {
		subscriptionCapabilities(rest.CreateElement("resource"), val)
	}
	if s.AuditEvents != nil {
		res := rest.CreateElement("resource")
		val(res, "type", "AuditEvent")
		val(res, "documentation", "The audit trail, for the tenant's admins: who read, searched, wrote or deleted which patient's data, ran a TI action or logged in.")
		val(res.CreateElement("interaction"), "code", "search-type")
		for _, p := range [][2]string{{"patient", "reference"}, {"date", "date"}, {"agent", "string"}} {
			sp := res.CreateElement("searchParam")
			val(sp, "name", p[0])
			val(sp, "type", p[1])
		}
	}
	val(rest.CreateElement("interaction"), "code", "transaction")
	val(rest.CreateElement("interaction"), "code", "batch")
	// RED's TI actions: GET or POST /{tenant}/TI?action=$name, and Bundle?action=$signpdf
	for _, a := range append(telematik.Actions(), "$signpdf") {
		op := rest.CreateElement("operation")
		val(op, "name", strings.TrimPrefix(a, "$"))
		val(op, "definition", "https://github.com/redclone/red/OperationDefinition/"+strings.TrimPrefix(a, "$"))
	}
	return cs
}

// subscriptionCapabilities describes package notify's Subscriptions in res: the interactions,
// the channel (rest-hook only) and payloads, the topics (the subscriptions backport's extension)
// and $events. A Subscription list takes no search parameters.
func subscriptionCapabilities(res *etree.Element, val func(*etree.Element, string, string) *etree.Element) {
	for _, topic := range notify.Topics() {
		ext := res.CreateElement("extension")
		ext.CreateAttr("url", "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical")
		val(ext, "valueCanonical", topic)
	}
	val(res, "type", "Subscription")
	val(res, "documentation", "Channel type rest-hook only, to loopback endpoints (other hosts only when the admin allows them by name, over https); "+
		"payload application/fhir+xml, id-only (default) or full-resource (backport-payload-content); criteria a search (Type?parameters, as the type's searchParams) "+
		"or a topic ("+notify.TopicPrefix+"…). Notifications are signed as Standard Webhooks sign them and numbered per subscription; "+
		"GET /{tenant}/Subscription/{id}/$events?since=N sends the numbered ones after N again.")
	for _, code := range []string{"read", "update", "delete", "create", "search-type"} {
		val(res.CreateElement("interaction"), "code", code)
	}
	op := res.CreateElement("operation")
	val(op, "name", "events")
	val(op, "definition", "https://github.com/redclone/red/OperationDefinition/events")
}
