// Package api is red's HTTP face: routes, the loopback and tenant guards, handlers that hand FHIR
// XML to the use cases, and the one place that turns errors into OperationOutcomes.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/telematik"
	"github.com/redclone/red/storage"
)

// Records is what the API needs from the record store of the unlocked tenant.
type Records interface {
	PostBundle(ctx context.Context, b *etree.Element) (*etree.Element, error)
	DeleteBundle(ctx context.Context, id string) (*etree.Element, error)
	Read(ctx context.Context, typ, id string) (*etree.Element, error)
	// ReadDocument is Read's resource as fhir.Document writes it, and its version.
	ReadDocument(ctx context.Context, typ, id string) ([]byte, int64, error)
	ReadVersion(ctx context.Context, typ, id, version string) (*etree.Element, error)
	Search(ctx context.Context, typ string, q url.Values) (fhir.SearchSet, error)
	// SearchDocument is Search's answer as fhir.Document writes it.
	SearchDocument(ctx context.Context, typ string, q url.Values) ([]byte, error)
}

// Telematik carries out RED's TI actions.
type Telematik interface {
	Do(ctx context.Context, action string, q url.Values, body *etree.Element) (telematik.Answer, error)
	SignPDF(ctx context.Context, q url.Values, body []byte) (telematik.Answer, error)
	// CreateERP signs and sends one prescription (POST /{tenant}/Bundle?action=$createerp).
	CreateERP(ctx context.Context, q url.Values, body *etree.Element) (telematik.Answer, error)
	// Tasks answers the e-prescription Task polling (GET /{tenant}/Task).
	Tasks(ctx context.Context, q url.Values) (telematik.Answer, error)
	// Received answers the pharmacy's unread messages (GET /{tenant}/Communication?action=$received).
	Received(ctx context.Context, q url.Values) (telematik.Answer, error)
	// Reply sends a pharmacy's message to an insured person (POST /{tenant}/Communication?action=$reply).
	Reply(ctx context.Context, q url.Values, body *etree.Element) (telematik.Answer, error)
	// TaskAction runs GET /{tenant}/Task?action=$accept, $reject, $abort (a pharmacy's or a
	// practice's) or $receipt.
	TaskAction(ctx context.Context, action string, q url.Values) (telematik.Answer, error)
	// PharmacyTask reads a pharmacy's prescription with its Task (GET /{tenant}/Task/{id}).
	PharmacyTask(ctx context.Context, id string) (telematik.Answer, error)
	// Dispense records a dispensation and closes the Task (POST /{tenant}/Bundle?action=$dispense).
	Dispense(ctx context.Context, q url.Values, body *etree.Element) (telematik.Answer, error)
}

// UI is the e-prescription signing page (package ui), served under /{tenant}/ui/ behind the
// same guards as the API.
type UI interface {
	Page(w http.ResponseWriter, r *http.Request)  // GET /{tenant}/ui/
	Asset(w http.ResponseWriter, r *http.Request) // GET /{tenant}/ui/app.js, app.css, icon.svg
	State(w http.ResponseWriter, r *http.Request) // GET /{tenant}/ui/state
	Sign(w http.ResponseWriter, r *http.Request)  // POST /{tenant}/ui/sign
}

// AuditEvents answers the audit trail's search for admins (package audit): RED's searchset of
// AuditEvents, 403 for anyone else.
type AuditEvents interface {
	Search(ctx context.Context, q url.Values) (fhir.SearchSet, error)
}

// Access says who acts for a request (package users' Session): the logged-in user with their
// roles and groups, the workstation, and the API client.
type Access interface {
	// Principal is who acts for an API request whose Authorization header is authorization; an
	// error (fhir.CodeUnauthorized, 401) when the server requires a token it does not carry.
	Principal(ctx context.Context, authorization string) (access.Principal, error)
	// Page is who acts for a request of red's own page, which has a session of its own.
	Page(ctx context.Context) (access.Principal, error)
}

// Tenants answers whether a tenant exists at all (for 404 versus 403).
type Tenants interface {
	Tenant(ctx context.Context, alias string) (storage.Tenant, error)
}

// Server serves one unlocked tenant.
type Server struct {
	Tenant  string
	Records Records
	Tenants Tenants
	TI      Telematik
	// UI, when set, is the signing page under /{tenant}/ui/.
	UI     UI
	Limits fhir.Limits
	Log    *slog.Logger
	// Port, when not 0, is the only port a Host header may name.
	Port int
	// Touch, when set, is called on every request (the idle lock's clock).
	Touch func()
	// Version is red's version for the CapabilityStatement.
	Version string
	// FHIRMode is ModeRED ("" too: RED's shapes) or ModeStrict (the FHIR specification's shapes,
	// red serve --fhir-mode strict); a request's Prefer: handling=strict or lenient overrides it.
	FHIRMode string
	// Subscriptions, when set, serves /{tenant}/Subscription (notifications).
	Subscriptions Subscriptions
	// AuditEvents, when set, serves GET /{tenant}/AuditEvent (the audit trail).
	AuditEvents AuditEvents
	// Access, when set, says who acts: every request under /{tenant} carries its principal in
	// its context (package access). Without it no request does, and the actions RED reserves
	// to a role are refused.
	Access Access
}
