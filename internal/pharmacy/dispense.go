package pharmacy

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/ti/fachdienst"
)

// Profiles of the dispensation's input (workflow 1.4 and later).
const (
	closeInput    = "GEM_ERP_PR_PAR_CloseOperation_Input"
	dispenseInput = "GEM_ERP_PR_PAR_DispenseOperation_Input"
)

// handedOverDate is the only form of whenHandedOver the workflow allows (workflow-abgabeDatumsFormat).
var handedOverDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// Dispensation checks the input of $dispense — gematik's $close input Parameters
// (GEM_ERP_PR_PAR_CloseOperation_Input) with one rxDispensation per MedicationDispense, each with
// the parts medicationDispense and medication — and returns the PrescriptionId its
// MedicationDispenses name. Every finding is reported at once, with its location. performer,
// when set, is the Telematik-ID every MedicationDispense must name as its performer (the
// pharmacy's SMC-B).
func Dispensation(body *etree.Element, performer string) (string, error) {
	if body == nil || body.Tag != "Parameters" {
		return "", fhir.Fail(fhir.CodeInvalid, "Parameters", "send gematik's $close input: a Parameters resource (%s) with one rxDispensation per MedicationDispense", closeInput)
	}
	var issues fhir.Issues
	add := func(code fhir.IssueCode, at, format string, args ...any) {
		issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: code, Expression: at, Diagnostics: fmt.Sprintf(format, args...)})
	}
	id := ""
	params := body.SelectElements("parameter")
	if len(params) == 0 {
		add(fhir.CodeRequired, "Parameters.parameter", "no rxDispensation: name at least one MedicationDispense")
	}
	for i, param := range params {
		at := fmt.Sprintf("Parameters.parameter[%d]", i)
		if name := fhir.ChildValue(param, "name"); name != "rxDispensation" {
			add(fhir.CodeValue, at+".name", "expected rxDispensation, not %q", name)
			continue
		}
		var md, med *etree.Element
		mdAt := ""
		for j, part := range param.SelectElements("part") {
			partAt := fmt.Sprintf("%s.part[%d]", at, j)
			res := fhir.ResourceOf(part.SelectElement("resource"))
			switch name := fhir.ChildValue(part, "name"); name {
			case "medicationDispense":
				if res == nil || res.Tag != "MedicationDispense" {
					add(fhir.CodeStructure, partAt+".resource", "the part medicationDispense holds a MedicationDispense")
					continue
				}
				md, mdAt = res, partAt+".resource"
			case "medication":
				if res == nil || res.Tag != "Medication" {
					add(fhir.CodeStructure, partAt+".resource", "the part medication holds a Medication")
					continue
				}
				med = res
			default:
				add(fhir.CodeValue, partAt+".name", "expected medicationDispense or medication, not %q", name)
			}
		}
		if md == nil {
			add(fhir.CodeRequired, at+".part", "rxDispensation without a medicationDispense part")
			continue
		}
		if med == nil {
			add(fhir.CodeRequired, at+".part", "rxDispensation without a medication part (the Medication handed over)")
		}
		rx := ""
		for _, idn := range md.SelectElements("identifier") {
			if fhir.ChildValue(idn, "system") == fachdienst.SystemPrescriptionID {
				rx = fhir.ChildValue(idn, "value")
			}
		}
		switch {
		case rx == "":
			add(fhir.CodeRequired, mdAt+".identifier", "the MedicationDispense names no PrescriptionId (system %s)", fachdienst.SystemPrescriptionID)
		case ident.PrescriptionID(rx) != nil:
			add(fhir.CodeValue, mdAt+".identifier.value", "not a PrescriptionId: ddd.ddd.ddd.ddd.ddd.dd with valid check digits")
		case id != "" && rx != id:
			add(fhir.CodeValue, mdAt+".identifier.value", "every MedicationDispense names the same prescription")
		default:
			id = rx
		}
		if st := fhir.ChildValue(md, "status"); st != "completed" {
			add(fhir.CodeValue, mdAt+".status", "a dispensation's status is completed")
		}
		if !handedOverDate.MatchString(fhir.ChildValue(md, "whenHandedOver")) {
			add(fhir.CodeValue, mdAt+".whenHandedOver", "the day handed over, written YYYY-MM-DD")
		}
		if fhir.ChildValue(md, "subject", "identifier", "value") == "" {
			add(fhir.CodeRequired, mdAt+".subject.identifier", "the insured person's KVNR is required")
		}
		switch tid := fhir.ChildValue(md, "performer", "actor", "identifier", "value"); {
		case tid == "":
			add(fhir.CodeRequired, mdAt+".performer.actor.identifier", "the pharmacy's Telematik-ID is required")
		case performer != "" && tid != performer:
			add(fhir.CodeValue, mdAt+".performer.actor.identifier.value", "is not the Telematik-ID of the pharmacy's SMC-B")
		}
		if med != nil && fhir.ChildValue(md, "medicationReference", "reference") == "" {
			add(fhir.CodeRequired, mdAt+".medicationReference", "refer to the Medication handed over")
		}
	}
	if len(issues) > 0 {
		return "", fhir.Reject(issues)
	}
	return id, nil
}

// Dispense records what the pharmacy handed over for the prescription id it holds (body checked
// by Dispensation). With close the Task is completed ($close) and the Fachdienst's receipt kept;
// a prescription closed before answers its kept receipt again. Without close the dispensation is
// only recorded ($dispense) and the Task stays in progress.
func (s *Service) Dispense(ctx context.Context, id string, body *etree.Element, close bool) (Prescription, error) {
	p, err := s.held(ctx, id)
	if err != nil {
		return p, err
	}
	switch {
	case p.State == Closed && close:
		return p, nil // closed before (the answer of that call may have been lost)
	case p.State == Closed:
		return p, fhir.Fail(fhir.CodeConflict, "prescriptionid", "this prescription is closed already; $receipt returns its receipt")
	case p.State == Closing && !close:
		return p, fhir.Fail(fhir.CodeConflict, "prescriptionid", "the $close of this prescription did not finish; call $dispense with closing again")
	case !close:
		err := s.bounded(ctx, func(ctx context.Context) error {
			return s.Fachdienst.Dispense(ctx, id, p.Secret, input(body, dispenseInput))
		})
		if err != nil {
			return p, refusal("$dispense", err, "")
		}
		p.State = Dispensed
		return p, s.save(ctx, &p)
	}
	p.State, p.Dispensation = Closing, input(body, closeInput)
	if err := s.save(ctx, &p); err != nil { // the dispensation, before $close
		return p, err
	}
	var r fachdienst.Receipt
	err = s.bounded(ctx, func(ctx context.Context) (err error) {
		r, err = s.Fachdienst.Close(ctx, id, p.Secret, p.Dispensation)
		return err
	})
	if err == nil {
		return p, s.closed(ctx, &p, r)
	}
	// Did it close (this call, whose answer was lost, or an earlier one)? The Task tells.
	var d fachdienst.TaskDetails
	gerr := s.bounded(ctx, func(ctx context.Context) (err error) {
		d, err = s.Fachdienst.GetTask(ctx, id, "", p.Secret)
		return err
	})
	switch {
	case gerr == nil && d.Task.Status == fachdienst.StatusCompleted && d.Receipt != nil:
		return p, s.closed(ctx, &p, *d.Receipt)
	case gerr == nil && d.Task.Status == fachdienst.StatusInProgress:
		p.State, p.Dispensation = Accepted, nil // not closed: back to where it was
		if !d.Task.LastMedicationDispense.IsZero() {
			p.State = Dispensed
		}
		if serr := s.save(ctx, &p); serr != nil {
			return p, serr
		}
		return p, refusal("$close", err, "")
	}
	return p, refusal("$close", err, "; red keeps the dispensation and finishes the close when $dispense is called again")
}

// closed keeps the receipt of a completed Task.
func (s *Service) closed(ctx context.Context, p *Prescription, r fachdienst.Receipt) error {
	p.State, p.Receipt, p.Closed = Closed, r.XML, s.now()
	return s.save(ctx, p)
}

// input is the dispensation as the Fachdienst's operation takes it: the Parameters with the
// operation's profile.
func input(body *etree.Element, profile string) []byte {
	b := body.Copy()
	for _, pr := range b.FindElements("meta/profile") {
		v := fhir.Value(pr)
		for _, name := range []string{closeInput, dispenseInput} {
			if strings.Contains(v, name) {
				fhir.SetValue(pr, strings.Replace(v, name, profile, 1))
			}
		}
	}
	return fhir.Marshal(b)
}
