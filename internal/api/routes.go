package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// Handler returns every route red serves.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverPanics, s.logRequests, s.loopbackOnly, s.touch, s.negotiate)
	r.NotFound(s.handle(notFound))
	r.MethodNotAllowed(s.handle(methodNotAllowed))

	r.Get("/metadata", s.handle(s.metadata))
	r.Route("/{tenant}", func(r chi.Router) {
		r.Use(s.unlockedTenant)
		r.Use(s.admit)
		r.Get("/metadata", s.handle(s.metadata)) // the tenant is a FHIR base URL
		r.Group(func(r chi.Router) {
			r.Use(s.acting)
			r.Post("/Bundle", s.handle(s.postBundle))
			r.Delete("/Bundle/{id}", s.handle(s.deleteBundle))
			r.Get("/TI", s.handle(s.tiAction))
			r.Post("/TI", s.handle(s.tiAction))
			r.Get("/Task", s.handle(s.tasks))
			r.Get("/Communication", s.handle(s.communications))
			r.Post("/Communication", s.handle(s.communications))
			r.Get("/Task/{id}", s.handle(s.pharmacyTask))
			r.Post("/Subscription", s.handle(s.createSubscription))
			r.Get("/Subscription", s.handle(s.listSubscriptions))
			r.Get("/Subscription/{id}", s.handle(s.readSubscription))
			r.Put("/Subscription/{id}", s.handle(s.updateSubscription))
			r.Delete("/Subscription/{id}", s.handle(s.deleteSubscription))
			r.Get("/Subscription/{id}/$events", s.handle(s.subscriptionEvents))
			if s.AuditEvents != nil {
				r.Get("/AuditEvent", s.handle(s.auditEvents))
			}
			r.Get("/{type}", s.handle(s.search))
			r.Get("/{type}/{id}", s.handle(s.read))
			r.Get("/{type}/{id}/_history/{version}", s.handle(s.readVersion))
		})
		if s.UI != nil {
			r.Group(func(r chi.Router) {
				r.Use(s.actingOnPage) // the page has a session of its own, no API token
				r.Get("/ui", redirectToUI)
				r.Get("/ui/", s.UI.Page)
				r.Get("/ui/app.js", s.UI.Asset)
				r.Get("/ui/app.css", s.UI.Asset)
				r.Get("/ui/icon.svg", s.UI.Asset)
				r.Get("/ui/state", s.UI.State)
				r.Post("/ui/sign", s.UI.Sign)
			})
		}
	})
	return r
}

// redirectToUI sends /{tenant}/ui to the page, /{tenant}/ui/, whose assets are relative to it.
func redirectToUI(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "ui/", http.StatusMovedPermanently)
}
