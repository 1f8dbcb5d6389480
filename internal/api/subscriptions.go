package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/beevik/etree"
	"github.com/go-chi/chi/v5"

	"github.com/redclone/red/fhir"
)

// Subscriptions is the notification use case (package notify): FHIR R4 Subscriptions with a
// rest-hook channel.
type Subscriptions interface {
	Create(ctx context.Context, body *etree.Element) (*etree.Element, error)
	Update(ctx context.Context, id string, body *etree.Element) (res *etree.Element, created bool, err error)
	Read(ctx context.Context, id string) (*etree.Element, error)
	List(ctx context.Context) (fhir.SearchSet, error)
	Delete(ctx context.Context, id string) error
	Events(ctx context.Context, id string, since int64, count int) (fhir.SearchSet, error)
}

// subscriptions is the use case, or the error that says notifications are off.
func (s *Server) subscriptions() (Subscriptions, error) {
	if s.Subscriptions == nil {
		return nil, fhir.Fail(fhir.CodeNotSupported, "", "this server does not send notifications")
	}
	return s.Subscriptions, nil
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) error {
	subs, err := s.subscriptions()
	if err != nil {
		return err
	}
	b, err := s.body(w, r)
	if err != nil {
		return err
	}
	res, err := subs.Create(r.Context(), b)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "Subscription/"+fhir.ChildValue(res, "id")+"/_history/1")
	w.Header().Set("ETag", `W/"1"`)
	writeXML(w, http.StatusCreated, res)
	return nil
}

func (s *Server) updateSubscription(w http.ResponseWriter, r *http.Request) error {
	subs, err := s.subscriptions()
	if err != nil {
		return err
	}
	b, err := s.body(w, r)
	if err != nil {
		return err
	}
	res, created, err := subs.Update(r.Context(), chi.URLParam(r, "id"), b)
	if err != nil {
		return err
	}
	if created {
		writeXML(w, http.StatusCreated, res)
		return nil
	}
	writeResource(w, res)
	return nil
}

func (s *Server) readSubscription(w http.ResponseWriter, r *http.Request) error {
	subs, err := s.subscriptions()
	if err != nil {
		return err
	}
	res, err := subs.Read(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeResource(w, res)
	return nil
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	subs, err := s.subscriptions()
	if err != nil {
		return err
	}
	set, err := subs.List(r.Context())
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, set.Element())
	return nil
}

func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request) error {
	subs, err := s.subscriptions()
	if err != nil {
		return err
	}
	if err := subs.Delete(r.Context(), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// subscriptionEvents answers GET /{tenant}/Subscription/{id}/$events?since=N[&_count=M].
func (s *Server) subscriptionEvents(w http.ResponseWriter, r *http.Request) error {
	subs, err := s.subscriptions()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	since, err := strconv.ParseInt(q.Get("since"), 10, 64)
	if q.Get("since") == "" {
		since, err = 0, nil
	}
	if err != nil || since < 0 {
		return fhir.Fail(fhir.CodeValue, "since", "since is the last sequence number received, a whole number from 0")
	}
	count := 0
	if c := q.Get("_count"); c != "" {
		if count, err = strconv.Atoi(c); err != nil || count < 1 {
			return fhir.Fail(fhir.CodeValue, "_count", "_count must be a whole number from 1")
		}
	}
	set, err := subs.Events(r.Context(), chi.URLParam(r, "id"), since, count)
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, set.Element())
	return nil
}
