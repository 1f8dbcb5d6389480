package fachdienstsim

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/ti/fachdienst"
)

// The fixed messages of the reference Fachdienst (erp-processing-context) and api-erp.
const (
	msgDeleted          = "Task has already been deleted"
	msgAccessCode       = "AccessCode mismatch"
	msgNoDispense       = "Abschluss des Workflows konnte nicht durchgeführt werden. Dispensierinformationen wurden nicht bereitgestellt."
	msgRoleNotAllowed   = "Access not allowed for professionOID"
	vauBruteForce       = "brute_force"
	vauInvalidRx        = "invalid_prescription"
	statusPKVNotAllowed = "Coverage \"PKV\" not allowed for flowtype 160/162/169"
	statusPKVNotSet     = "Coverage \"PKV\" not set for flowtype 200/209"
)

func forbiddenRole(who fachdienst.Identity) error {
	return failDiag(http.StatusForbidden, msgRoleNotAllowed, who.ProfessionOID)
}

// lookup finds a Task; the caller holds s.mu.
func (s *Simulator) lookup(id string) (*taskRecord, error) {
	if ident.PrescriptionID(id) != nil {
		return nil, failDiag(http.StatusBadRequest, "Failed to parse prescription ID from URL parameter", "expected ddd.ddd.ddd.ddd.ddd.dd with valid check digits")
	}
	t, ok := s.tasks[id]
	if !ok {
		return nil, fail(http.StatusNotFound, "Task not found for prescription id")
	}
	return t, nil
}

// commit persists a changed copy of a Task and makes it current; the caller holds s.mu.
func (s *Simulator) commit(t *taskRecord) error {
	if err := s.store.saveTask(t); err != nil {
		return err
	}
	s.tasks[t.ID] = t
	return nil
}

// clone copies a Task record for changing; slices are replaced, never changed in place.
func clone(t *taskRecord) *taskRecord {
	c := *t
	return &c
}

func equalSecret(given, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(given), []byte(want)) == 1
}

// accessCodeOf is the AccessCode a request carries: ?ac= or the X-AccessCode header.
func accessCodeOf(r *http.Request) string {
	if ac := r.URL.Query().Get("ac"); ac != "" {
		return ac
	}
	return r.Header.Get(fachdienst.HeaderAccessCode)
}

func checkAccessCode(r *http.Request, t *taskRecord) error {
	if !equalSecret(accessCodeOf(r), t.AccessCode) {
		return &fdError{status: http.StatusForbidden, text: msgAccessCode, vau: vauBruteForce}
	}
	return nil
}

func checkSecret(r *http.Request, t *taskRecord, text string) error {
	if !equalSecret(r.URL.Query().Get("secret"), t.Secret) {
		return &fdError{status: http.StatusForbidden, text: text, vau: vauBruteForce}
	}
	return nil
}

// create is POST /Task/$create.
func (s *Simulator) create(w http.ResponseWriter, r *http.Request, who fachdienst.Identity) error {
	if !who.Prescriber() {
		return forbiddenRole(who)
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if body == nil || body.Tag != "Parameters" {
		return fail(http.StatusBadRequest, "Expected a Parameters resource with the parameter workflowType")
	}
	params := body.SelectElements("parameter")
	if len(params) != 1 {
		return fail(http.StatusBadRequest, "unexpected number of parameters")
	}
	if fhir.ChildValue(params[0], "name") != "workflowType" {
		return fail(http.StatusBadRequest, "workflowType Parameter not given")
	}
	vc := params[0].SelectElement("valueCoding")
	if system := fhir.ChildValue(vc, "system"); system != fachdienst.SystemFlowType {
		return failDiag(http.StatusBadRequest, "unknown flowType system given", "expected "+fachdienst.SystemFlowType+" but got: "+system)
	}
	code, err := strconv.Atoi(fhir.ChildValue(vc, "code"))
	flow := fachdienst.FlowType(code)
	if err != nil || !flow.Known() {
		return fail(http.StatusBadRequest, "Invalid workFlowType in incoming parameters")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	serial := s.counter.Next
	id, err := ident.NewPrescriptionID(int(flow), serial)
	if err != nil {
		return err
	}
	// The number is consumed before the Task exists, as in the real Fachdienst.
	next := counter{Next: serial + 1}
	if err := s.store.saveCounter(next); err != nil {
		return err
	}
	s.counter = next
	ac, err := s.hex32()
	if err != nil {
		return err
	}
	now := s.now()
	t := &taskRecord{ID: id, FlowType: int(flow), Status: string(fachdienst.StatusDraft), AccessCode: ac, AuthoredOn: now, LastModified: now}
	if err := s.commit(t); err != nil {
		return err
	}
	w.Header().Set("Location", baseURL(r)+"/Task/"+id)
	writeXML(w, http.StatusCreated, renderTask(t, taskView{accessCode: true}))
	return nil
}

// acceptTask is $accept: the pharmacy (or payor) takes the Task and gets its Secret.
func (s *Simulator) acceptTask(c *call) error {
	secret, err := s.hex32()
	if err != nil {
		return err
	}
	t := clone(c.cur)
	now := s.now()
	t.Status = string(fachdienst.StatusInProgress)
	t.Secret = secret
	t.Owner = c.who.ID
	t.AcceptedAt = now
	t.LastModified = now
	if err := s.commit(t); err != nil {
		return err
	}
	writeXML(c.w, http.StatusOK, s.acceptBundle(c.r, t, "/$accept/", true))
	return nil
}

// acceptBundle is the collection answer of $accept and of the secret recovery.
func (s *Simulator) acceptBundle(r *http.Request, t *taskRecord, selfSuffix string, withAccessCode bool) *etree.Element {
	base := baseURL(r)
	id, err := s.uuid()
	if err != nil {
		id = t.PrescriptionUUID
	}
	b := bundle(id, "collection", s.now(), base+"/Task/"+t.ID+selfSuffix)
	addEntry(b, base+"/Task/"+t.ID, renderTask(t, taskView{accessCode: withAccessCode, secret: true, binaryPrefix: true}), "")
	addEntry(b, "urn:uuid:"+t.PrescriptionUUID, prescriptionBinary(t), "")
	return b
}

// rejectTask is $reject: the Task is ready again for other pharmacies.
func (s *Simulator) rejectTask(c *call) error {
	t := clone(c.cur)
	t.Status = string(fachdienst.StatusReady)
	t.Secret, t.Owner = "", ""
	t.AcceptedAt = time.Time{}
	t.Dispenses, t.LastDispense = nil, nil
	t.LastModified = s.now()
	if err := s.commit(t); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// dispenseTask is $dispense: the MedicationDispenses so far, replacing earlier ones.
func (s *Simulator) dispenseTask(c *call) error {
	if c.body == nil {
		return fail(http.StatusBadRequest, "Missing MedicationDispense in the request body")
	}
	dispenses, err := s.dispensesFrom(c.body, c.cur, c.who)
	if err != nil {
		return err
	}
	t := clone(c.cur)
	now := s.now()
	t.Dispenses = dispenses
	t.LastDispense = &now
	t.LastModified = now
	if err := s.commit(t); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// closeTask is $close: the Task is completed with the dispenses of the body (or of $dispense)
// and the pharmacy gets the signed receipt; the Task's messages are deleted.
func (s *Simulator) closeTask(c *call) error {
	t := clone(c.cur)
	now := s.now()
	var err error
	if c.body == nil {
		if len(c.cur.Dispenses) == 0 {
			return fail(http.StatusForbidden, msgNoDispense)
		}
	} else {
		if t.Dispenses, err = s.dispensesFrom(c.body, c.cur, c.who); err != nil {
			return err
		}
		t.LastDispense = &now
	}
	if t.ReceiptUUID, err = s.uuid(); err != nil {
		return err
	}
	receipt, err := s.receipt(c.r, t, c.who.ID, now)
	if err != nil {
		return err
	}
	t.Receipt = fhir.Marshal(receipt)
	t.Status = string(fachdienst.StatusCompleted)
	t.LastModified = now
	if err := s.commit(t); err != nil {
		return err
	}
	if err := s.deleteCommunications(t.ID); err != nil {
		return err
	}
	writeXML(c.w, http.StatusOK, receipt)
	return nil
}

// abortTask is $abort: the Task is cancelled and its personal data deleted (prescription,
// receipt, dispensations, messages).
func (s *Simulator) abortTask(c *call) error {
	t := &taskRecord{
		ID: c.cur.ID, FlowType: c.cur.FlowType, Status: string(fachdienst.StatusCancelled),
		AuthoredOn: c.cur.AuthoredOn, LastModified: s.now(),
	}
	if err := s.commit(t); err != nil {
		return err
	}
	if err := s.deleteCommunications(t.ID); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// getTask is GET /Task/{id}.
func (s *Simulator) getTask(w http.ResponseWriter, r *http.Request, who fachdienst.Identity, id string) error {
	switch {
	case who.Insured():
		return s.getTaskInsured(w, r, who, id)
	case who.Pharmacy() || who.Payor():
		return s.getTaskPharmacy(w, r, who, id)
	}
	return forbiddenRole(who)
}

func (s *Simulator) getTaskInsured(w http.ResponseWriter, r *http.Request, who fachdienst.Identity, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookup(id)
	if err != nil {
		return err
	}
	switch fachdienst.Status(t.Status) {
	case fachdienst.StatusDraft:
		return fail(http.StatusForbidden, "Status draft is not allowed for this operation")
	case fachdienst.StatusCancelled:
		return fail(http.StatusGone, msgDeleted)
	}
	flow := fachdienst.FlowType(t.FlowType)
	if who.ID != t.KVNR {
		if err := checkAccessCode(r, t); err != nil {
			return err
		}
		if flow.DirectAssignment() {
			return fail(http.StatusForbidden, "Insurant representatives may not access directly assigned tasks")
		}
	}
	base := baseURL(r)
	bid, err := s.uuid()
	if err != nil {
		return err
	}
	b := bundle(bid, "collection", s.now(), base+"/Task/"+t.ID)
	addEntry(b, base+"/Task/"+t.ID, renderTask(t, taskView{accessCode: !flow.DirectAssignment(), confirmation: true, receipt: true}), "")
	if len(t.Content) > 0 && t.ConfirmationUUID != "" {
		if kbv, err := fhir.Parse(t.Content, fhir.DefaultLimits); err == nil {
			if idEl := kbv.SelectElement("id"); idEl != nil {
				fhir.SetValue(idEl, t.ConfirmationUUID)
			}
			addEntry(b, "urn:uuid:"+t.ConfirmationUUID, kbv, "")
		}
	}
	writeXML(w, http.StatusOK, b)
	return nil
}

func (s *Simulator) getTaskPharmacy(w http.ResponseWriter, r *http.Request, who fachdienst.Identity, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookup(id)
	if err != nil {
		return err
	}
	if t.Status == string(fachdienst.StatusCancelled) {
		return fail(http.StatusGone, msgDeleted)
	}
	base := baseURL(r)
	if r.URL.Query().Has("secret") {
		if err := checkSecret(r, t, "No or invalid secret provided for user pharmacy"); err != nil {
			return err
		}
		bid, err := s.uuid()
		if err != nil {
			return err
		}
		completed := t.Status == string(fachdienst.StatusCompleted) && len(t.Receipt) > 0
		b := bundle(bid, "collection", s.now(), base+"/Task/"+t.ID)
		addEntry(b, base+"/Task/"+t.ID, renderTask(t, taskView{secret: true, binaryPrefix: true, receipt: completed}), "")
		if completed {
			if receipt, err := fhir.Parse(t.Receipt, fhir.DefaultLimits); err == nil {
				addEntry(b, "urn:uuid:"+t.ReceiptUUID, receipt, "")
			}
		}
		writeXML(w, http.StatusOK, b)
		return nil
	}
	if accessCodeOf(r) == "" {
		return fail(http.StatusForbidden, "Neither AccessCode(ac) nor secret provided as URI-Parameter.")
	}
	// Secret recovery: the accepting pharmacy lost the answer of $accept.
	if err := checkAccessCode(r, t); err != nil {
		return err
	}
	if t.Status != string(fachdienst.StatusInProgress) {
		return fail(http.StatusPreconditionFailed, "Task not in-progress.")
	}
	if t.Owner != who.ID {
		return fail(http.StatusPreconditionFailed, "Task.owner doesn't match idNumberClaim in ACCESS_TOKEN")
	}
	writeXML(w, http.StatusOK, s.acceptBundle(r, t, "", false))
	return nil
}

// listTasks is GET /Task: an insured person's own Tasks, or a pharmacy's eGK lookup by KVNR.
func (s *Simulator) listTasks(w http.ResponseWriter, r *http.Request, who fachdienst.Identity) error {
	q := r.URL.Query()
	var match func(t *taskRecord) bool
	switch {
	case who.Insured():
		match = func(t *taskRecord) bool {
			return t.KVNR == who.ID && t.Status != string(fachdienst.StatusDraft) && t.Status != string(fachdienst.StatusCancelled)
		}
	case who.Pharmacy():
		kvnr := q.Get("kvnr")
		if kvnr == "" {
			return fail(455, "Ein Prüfnachweis ohne KVNR wird nicht akzeptiert.")
		}
		if err := ident.KVNR(kvnr); errors.Is(err, ident.ErrFormat) {
			return fail(http.StatusForbidden, "Invalid Kvnr")
		}
		if q.Get("pnw") == "" && q.Get("PNW") == "" {
			return fail(http.StatusForbidden, "Missing or invalid PNW query parameter")
		}
		today := s.today()
		match = func(t *taskRecord) bool {
			flow := fachdienst.FlowType(t.FlowType)
			return t.KVNR == kvnr && t.Status == string(fachdienst.StatusReady) &&
				(flow == fachdienst.FlowApothekenpflichtig || flow == fachdienst.FlowTRezept) &&
				(t.ExpiryDate == "" || t.ExpiryDate >= today)
		}
	default:
		return forbiddenRole(who)
	}
	filters, err := s.taskFilters(q)
	if err != nil {
		return err
	}
	s.mu.Lock()
	var found []*taskRecord
	for _, t := range s.tasks {
		if match(t) && filters(t) {
			found = append(found, t)
		}
	}
	s.mu.Unlock()
	desc := q.Get("_sort") == "-authored-on"
	sortResults(found, desc, func(a, b *taskRecord) int { return a.AuthoredOn.Compare(b.AuthoredOn) }, func(t *taskRecord) string { return t.ID })
	page, links, err := paginate(len(found), q, baseURL(r)+"/Task")
	if err != nil {
		return err
	}
	base := baseURL(r)
	b, err := s.searchset(len(found), links, s.now())
	if err != nil {
		return err
	}
	for _, t := range found[page[0]:page[1]] {
		view := taskView{accessCode: !fachdienst.FlowType(t.FlowType).DirectAssignment()}
		addEntry(b, base+"/Task/"+t.ID, renderTask(t, view), "match")
	}
	writeXML(w, http.StatusOK, b)
	return nil
}

// taskFilters reads the search parameters of GET /Task.
func (s *Simulator) taskFilters(q map[string][]string) (func(*taskRecord) bool, error) {
	var preds []func(*taskRecord) bool
	for name, values := range q {
		for _, v := range values {
			switch name {
			case "status":
				want := v
				preds = append(preds, func(t *taskRecord) bool { return t.Status == want })
			case "authored-on", "modified", "expiry-date", "accept-date":
				cmp, err := s.dateFilter(v)
				if err != nil {
					return nil, failDiag(http.StatusBadRequest, "Invalid search parameter "+name, err.Error())
				}
				field := name
				preds = append(preds, func(t *taskRecord) bool {
					switch field {
					case "authored-on":
						return cmp(t.AuthoredOn)
					case "modified":
						return cmp(t.LastModified)
					case "expiry-date":
						return t.ExpiryDate != "" && cmp(s.dayStart(t.ExpiryDate))
					default:
						return t.AcceptDate != "" && cmp(s.dayStart(t.AcceptDate))
					}
				})
			case "_sort", "_count", "__offset", "kvnr", "pnw", "PNW", "hcv", "ac", "_format":
			default:
				return nil, failDiag(http.StatusBadRequest, "Unknown search parameter", name)
			}
		}
	}
	return func(t *taskRecord) bool {
		for _, p := range preds {
			if !p(t) {
				return false
			}
		}
		return true
	}, nil
}
