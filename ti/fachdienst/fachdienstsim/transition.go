package fachdienstsim

import (
	"net/http"
	"slices"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/fachdienst"
)

// A transition is one $operation of the Task state machine (POST /Task/{id}/$op): the roles
// that may call it, whether it reads a request body, the checks of the Task in the order of the
// reference Fachdienst, each with its status code and message, and what it does once every
// check passed.
type transition struct {
	roles  []func(fachdienst.Identity) bool
	body   bool
	checks []check
	do     func(*Simulator, *call) error
}

// call is a transition request: the caller, its body and the Task it names.
type call struct {
	w    http.ResponseWriter
	r    *http.Request
	who  fachdienst.Identity
	body *etree.Element // nil when the transition reads none or none was sent
	cur  *taskRecord
}

// A check refuses a call with an answer, or lets it pass (nil).
type check func(*Simulator, *call) error

// The roles of the Fachdienst's callers.
var (
	prescriber = fachdienst.Identity.Prescriber
	pharmacy   = fachdienst.Identity.Pharmacy
	payor      = fachdienst.Identity.Payor
	insured    = fachdienst.Identity.Insured
)

// Task states.
var (
	draft      = []fachdienst.Status{fachdienst.StatusDraft}
	ready      = []fachdienst.Status{fachdienst.StatusReady}
	inProgress = []fachdienst.Status{fachdienst.StatusInProgress}
	completed  = []fachdienst.Status{fachdienst.StatusCompleted}
)

// transitions is the Task state machine.
var transitions = map[string]transition{
	"$activate": {roles: roles(prescriber), body: true, do: (*Simulator).activateTask, checks: []check{
		deleted(msgDeleted, false),
		accessCode,
		statusRule{allowed: draft, code: http.StatusForbidden, text: "Task not in status draft but in status ", withStatus: true}.check,
	}},
	"$accept": {roles: roles(pharmacy, payor), do: (*Simulator).acceptTask, checks: []check{
		redeemsFlow,
		deleted("Task meanwhile deleted for prescription id", true),
		accessCode,
		acceptedByCaller,
		statusRule{allowed: ready, code: http.StatusConflict, text: "Task has invalid status ", withStatus: true}.check,
		redeemableToday,
	}},
	"$reject": {roles: roles(pharmacy, payor), do: (*Simulator).rejectTask, checks: []check{
		deleted(msgDeleted, false),
		statusRule{allowed: inProgress, code: http.StatusForbidden, text: "Task not in status in progress, is: ", withStatus: true}.check,
		secret("No or invalid secret"),
	}},
	"$dispense": {roles: roles(pharmacy, payor), body: true, do: (*Simulator).dispenseTask, checks: []check{
		deleted(msgDeleted, false),
		secret("No or invalid secret provided for Task"),
		statusRule{allowed: inProgress, code: http.StatusForbidden, text: "Task not in-progress."}.check,
	}},
	"$close": {roles: roles(pharmacy, payor), body: true, do: (*Simulator).closeTask, checks: []check{
		deleted(msgDeleted, false),
		statusRule{allowed: inProgress, code: http.StatusForbidden, text: "Task has to be in progress, but is: ", withStatus: true}.check,
		secret("No or invalid secret provided for Task"),
	}},
	"$abort": {roles: roles(prescriber, pharmacy, insured), do: (*Simulator).abortTask, checks: []check{
		deleted(msgDeleted, false),
		statusRule{refused: draft, code: http.StatusForbidden, text: "Abort not expected for newly created Task"}.check,
		when(insuredDirectAssignment,
			statusRule{allowed: completed, code: http.StatusForbidden, text: "Abort for patient in workflow types 169 / 209 only allowed for completed Task"}.check),
		when(byPharmacy,
			statusRule{allowed: inProgress, code: http.StatusForbidden, text: "Task must be in progress for user pharmacy, is: ", withStatus: true}.check,
			secret("No or invalid secret provided for user pharmacy")),
		when(notByPharmacy,
			statusRule{refused: inProgress, code: http.StatusForbidden, text: "Task must not be in progress for users other than pharmacy, but is: ", withStatus: true}.check),
		when(byPrescriber,
			statusRule{allowed: ready, code: http.StatusForbidden, text: "Task must be ready for doctor, but is: ", withStatus: true}.check),
		when(notByPharmacyNorOwner, accessCode),
	}},
}

func roles(r ...func(fachdienst.Identity) bool) []func(fachdienst.Identity) bool { return r }

// transit runs the transition op on the Task id: roles, body, lookup and the checks in order,
// then what the transition does, all under s.mu from the lookup on.
func (s *Simulator) transit(w http.ResponseWriter, r *http.Request, who fachdienst.Identity, id, op string) error {
	tr, ok := transitions[op]
	if !ok {
		return fail(http.StatusNotFound, "Unknown operation")
	}
	if !slices.ContainsFunc(tr.roles, func(role func(fachdienst.Identity) bool) bool { return role(who) }) {
		return forbiddenRole(who)
	}
	c := &call{w: w, r: r, who: who}
	if tr.body {
		var err error
		if c.body, err = readBody(r); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if c.cur, err = s.lookup(id); err != nil {
		return err
	}
	for _, ck := range tr.checks {
		if err := ck(s, c); err != nil {
			return err
		}
	}
	return tr.do(s, c)
}

// statusRule passes a call when the Task's status is one of allowed (or, with refused set,
// none of refused); otherwise it answers code with text, followed by the status when
// withStatus.
type statusRule struct {
	allowed, refused []fachdienst.Status
	code             int
	text             string
	withStatus       bool
}

func (sr statusRule) check(_ *Simulator, c *call) error {
	st := fachdienst.Status(c.cur.Status)
	if sr.refused != nil && !slices.Contains(sr.refused, st) || sr.allowed != nil && slices.Contains(sr.allowed, st) {
		return nil
	}
	if sr.withStatus {
		return fail(sr.code, sr.text+c.cur.Status)
	}
	return fail(sr.code, sr.text)
}

// deleted answers 410 with text for a cancelled Task (and, with orWithoutAccessCode, for one
// that has no AccessCode).
func deleted(text string, orWithoutAccessCode bool) check {
	return func(_ *Simulator, c *call) error {
		if c.cur.Status == string(fachdienst.StatusCancelled) || orWithoutAccessCode && c.cur.AccessCode == "" {
			return fail(http.StatusGone, text)
		}
		return nil
	}
}

// accessCode requires the Task's AccessCode.
func accessCode(_ *Simulator, c *call) error { return checkAccessCode(c.r, c.cur) }

// secret requires the Task's Secret, answering text without it.
func secret(text string) check {
	return func(_ *Simulator, c *call) error { return checkSecret(c.r, c.cur, text) }
}

// when runs checks only for the calls cond selects.
func when(cond func(*call) bool, checks ...check) check {
	return func(s *Simulator, c *call) error {
		if !cond(c) {
			return nil
		}
		for _, ck := range checks {
			if err := ck(s, c); err != nil {
				return err
			}
		}
		return nil
	}
}

func byPharmacy(c *call) bool    { return c.who.Pharmacy() }
func notByPharmacy(c *call) bool { return !c.who.Pharmacy() }
func byPrescriber(c *call) bool  { return c.who.Prescriber() }

// insuredDirectAssignment: an insured person aborting a directly assigned Task (169, 209).
func insuredDirectAssignment(c *call) bool {
	return c.who.Insured() && fachdienst.FlowType(c.cur.FlowType).DirectAssignment()
}

// notByPharmacyNorOwner: callers other than pharmacies need the AccessCode, except the insured
// person the Task is for.
func notByPharmacyNorOwner(c *call) bool {
	own := c.who.Insured() && c.cur.KVNR != "" && c.who.ID == c.cur.KVNR
	return !c.who.Pharmacy() && !own
}

// redeemsFlow: pharmacies redeem medicines, payors DiGA.
func redeemsFlow(_ *Simulator, c *call) error {
	if !c.who.Redeems(fachdienst.FlowType(c.cur.FlowType)) {
		return forbiddenRole(c.who)
	}
	return nil
}

// acceptedByCaller tells a pharmacy that accepts a Task again that it holds it already.
func acceptedByCaller(_ *Simulator, c *call) error {
	if c.cur.Status == string(fachdienst.StatusInProgress) && c.cur.Owner == c.who.ID {
		return failDiag(http.StatusConflict, "Task has invalid status in-progress", "Task is processed by requesting institution")
	}
	return nil
}

// redeemableToday refuses a Task past its expiry date or a part of a multiple prescription
// before its start.
func redeemableToday(s *Simulator, c *call) error {
	today := s.today()
	if c.cur.ExpiryDate != "" && today > c.cur.ExpiryDate {
		return fail(http.StatusForbidden, "Verordnung bis "+germanDate(c.cur.ExpiryDate)+" einlösbar.")
	}
	if c.cur.MVOStart != "" && today < c.cur.MVOStart {
		return fail(http.StatusForbidden, "Teilverordnung zur Mehrfachverordnung "+c.cur.MVOID+" ist ab "+germanDate(c.cur.MVOStart)+" einlösbar.")
	}
	return nil
}
