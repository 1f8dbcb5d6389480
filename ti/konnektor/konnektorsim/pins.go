package konnektorsim

import (
	"strconv"

	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/wire"
)

// pinArg resolves CardHandle and PinTyp of a CardService request.
func (s *Simulator) pinArg(req *soapRequest) (*card, konnektor.PinType, *pinState, error) {
	c, err := s.cardArg(req, "CardHandle")
	if err != nil {
		return nil, "", nil, err
	}
	pt := konnektor.PinType(wire.Text(req.op.FindElement("PinTyp")))
	if pt == "" {
		return nil, "", nil, syntaxf("PinTyp missing")
	}
	ps := s.state.pin(c.cfg.Handle, pt)
	if ps == nil {
		return nil, "", nil, faultf(konnektor.CodeInvalidPinRef, "%s hat keine %s", c.cfg.Handle, pt)
	}
	return c, pt, ps, nil
}

// pinAnswer builds a PIN operation response.
func (s *Simulator) pinAnswer(req *soapRequest, name string, result konnektor.PinResult, leftTries int, warning *fault) *response {
	resp := newResponse(req.ns, name)
	s.addStatus(resp.op, warning)
	add(resp.op, "CARDCMN:PinResult", string(result))
	if leftTries >= 0 {
		add(resp.op, "CARDCMN:LeftTries", strconv.Itoa(leftTries))
	}
	return resp
}

func (s *Simulator) getPinStatus(req *soapRequest) (*response, error) {
	_, _, ps, err := s.pinArg(req)
	if err != nil {
		return nil, err
	}
	st, left := ps.status()
	resp := newResponse(req.ns, "GetPinStatusResponse")
	s.addStatus(resp.op, nil)
	add(resp.op, "m:PinStatus", string(st))
	add(resp.op, "m:LeftTries", strconv.Itoa(left))
	return resp, nil
}

// pinOutcome is the result of one PIN entry against a PIN.
type pinOutcome int

const (
	pinAccepted   pinOutcome = iota
	pinWrong                 // tries decremented, still verifiable
	pinNowBlocked            // the wrong entry blocked the PIN
	pinTimedOut              // nobody typed
)

// checkEntry prompts once for the PIN (defaulting to the right one) and updates the counter.
// CANCEL returns the 4049 fault. Called with s.mu held; the caller saves the state.
func (s *Simulator) checkEntry(c *card, ps *pinState) (pinOutcome, error) {
	entry := s.enter(c, ps.PIN)
	switch entry {
	case entryCancel:
		return 0, faultf(konnektor.CodeUserCancelled, "PIN-Eingabe am Kartenterminal abgebrochen")
	case entryTimeout:
		return pinTimedOut, nil
	case ps.PIN:
		ps.Tries = pinTries
		return pinAccepted, nil
	}
	ps.Tries--
	ps.Verified = false
	if ps.Tries <= 0 {
		ps.Tries = 0
		if ps.Transport {
			ps.Dead = true
		}
		return pinNowBlocked, nil
	}
	return pinWrong, nil
}

func (s *Simulator) verifyPin(req *soapRequest) (*response, error) {
	c, pt, ps, err := s.pinArg(req)
	if err != nil {
		return nil, err
	}
	const name = "VerifyPinResponse"
	switch {
	case ps.Dead || ps.Tries == 0:
		return s.pinAnswer(req, name, konnektor.PinWasBlocked, 0, nil), nil
	case ps.Transport:
		return s.pinAnswer(req, name, konnektor.PinTransportPin, ps.Tries,
			faultf(konnektor.CodeTransportPin, "%s ist noch die Transport-PIN; sie muss mit ChangePin geändert werden", pt)), nil
	}
	outcome, err := s.checkEntry(c, ps)
	if err != nil {
		return nil, err
	}
	var resp *response
	switch outcome {
	case pinTimedOut:
		return s.pinAnswer(req, name, konnektor.PinError, ps.Tries, faultf(konnektor.CodePinTimeout, "keine Eingabe am Kartenterminal")), nil
	case pinAccepted:
		ps.Verified = true
		resp = s.pinAnswer(req, name, konnektor.PinOK, ps.Tries, nil)
	case pinWrong:
		resp = s.pinAnswer(req, name, konnektor.PinRejected, ps.Tries, nil)
	case pinNowBlocked:
		resp = s.pinAnswer(req, name, konnektor.PinNowBlocked, 0, nil)
	}
	return resp, s.state.save()
}

func (s *Simulator) changePin(req *soapRequest) (*response, error) {
	c, pt, ps, err := s.pinArg(req)
	if err != nil {
		return nil, err
	}
	const name = "ChangePinResponse"
	if ps.Dead || ps.Tries == 0 {
		return s.pinAnswer(req, name, konnektor.PinWasBlocked, 0, nil), nil
	}
	outcome, err := s.checkEntry(c, ps)
	if err != nil {
		return nil, err
	}
	switch outcome {
	case pinTimedOut:
		return s.pinAnswer(req, name, konnektor.PinError, ps.Tries, faultf(konnektor.CodePinTimeout, "keine Eingabe am Kartenterminal")), nil
	case pinWrong:
		return s.pinAnswer(req, name, konnektor.PinRejected, ps.Tries, nil), s.state.save()
	case pinNowBlocked:
		return s.pinAnswer(req, name, konnektor.PinNowBlocked, 0, nil), s.state.save()
	}
	newPIN := s.enter(c, c.cfg.PINs[pt].PIN)
	switch {
	case newPIN == entryCancel:
		return nil, faultf(konnektor.CodeUserCancelled, "Eingabe der neuen PIN abgebrochen")
	case newPIN == entryTimeout:
		return s.pinAnswer(req, name, konnektor.PinError, ps.Tries, faultf(konnektor.CodePinTimeout, "keine Eingabe der neuen PIN")), nil
	case !validPIN(newPIN) || ps.Transport && newPIN == ps.PIN:
		// The terminal refuses a new PIN of the wrong length (or the transport PIN again).
		return s.pinAnswer(req, name, konnektor.PinError, ps.Tries, nil), s.state.save()
	}
	ps.PIN = newPIN
	ps.Transport = false
	ps.Tries = pinTries
	ps.Verified = false
	return s.pinAnswer(req, name, konnektor.PinOK, ps.Tries, nil), s.state.save()
}

func (s *Simulator) unblockPin(req *soapRequest) (*response, error) {
	c, pt, ps, err := s.pinArg(req)
	if err != nil {
		return nil, err
	}
	setNew, err := boolArg(req.op, "SetNewPin", false)
	if err != nil {
		return nil, err
	}
	const name = "UnblockPinResponse"
	switch {
	case ps.Dead:
		return nil, faultf(konnektor.CodePinBlocked, "die Transport-PIN von %s wurde gesperrt; die Karte muss ersetzt werden", pt)
	case ps.Transport:
		return s.pinAnswer(req, name, konnektor.PinTransportPin, ps.Tries,
			faultf(konnektor.CodeTransportPin, "%s ist noch die Transport-PIN", pt)), nil
	case ps.PUKTries == 0 || ps.PUKUses == 0:
		return s.pinAnswer(req, name, konnektor.PinWasBlocked, 0, nil), nil
	}
	entry := s.enter(c, ps.PUK)
	switch entry {
	case entryCancel:
		return nil, faultf(konnektor.CodeUserCancelled, "PUK-Eingabe abgebrochen")
	case entryTimeout:
		return s.pinAnswer(req, name, konnektor.PinError, ps.PUKTries, faultf(konnektor.CodePinTimeout, "keine PUK-Eingabe")), nil
	case ps.PUK:
	default:
		ps.PUKTries--
		if ps.PUKTries == 0 {
			return s.pinAnswer(req, name, konnektor.PinNowBlocked, 0, nil), s.state.save()
		}
		return s.pinAnswer(req, name, konnektor.PinRejected, ps.PUKTries, nil), s.state.save()
	}
	newPIN := ""
	if setNew {
		newPIN = s.enter(c, c.cfg.PINs[pt].PIN)
		switch {
		case newPIN == entryCancel:
			return nil, faultf(konnektor.CodeUserCancelled, "Eingabe der neuen PIN abgebrochen")
		case newPIN == entryTimeout:
			return s.pinAnswer(req, name, konnektor.PinError, ps.Tries, faultf(konnektor.CodePinTimeout, "keine Eingabe der neuen PIN")), nil
		case !validPIN(newPIN):
			return s.pinAnswer(req, name, konnektor.PinError, ps.Tries, nil), nil
		}
	}
	ps.PUKTries = pukTries
	ps.PUKUses--
	ps.Tries = pinTries
	ps.Verified = false
	if newPIN != "" {
		ps.PIN = newPIN
	}
	return s.pinAnswer(req, name, konnektor.PinOK, ps.Tries, nil), s.state.save()
}

// authorizeQES obtains the right to sign with the HBA's QES key for one call: a PIN.QES
// verified just before (consumed), or one PIN.QES entry at the terminal. Faults describe
// blocked, transport, wrong, cancelled and timed-out entries. The caller saves the state.
func (s *Simulator) authorizeQES(c *card) error {
	ps := s.state.pin(c.cfg.Handle, konnektor.PinQES)
	if ps == nil {
		return faultf(konnektor.CodeInvalidPinRef, "%s hat keine PIN.QES", c.cfg.Handle)
	}
	switch {
	case ps.Dead || ps.Tries == 0:
		return faultf(konnektor.CodePinBlocked, "PIN.QES von %s ist gesperrt; mit der PUK entsperren", c.cfg.Handle)
	case ps.Transport:
		return faultf(konnektor.CodeTransportPin, "PIN.QES von %s ist noch die Transport-PIN", c.cfg.Handle)
	case ps.Verified:
		ps.Verified = false
		return nil
	}
	outcome, err := s.checkEntry(c, ps)
	if err != nil {
		return err
	}
	switch outcome {
	case pinTimedOut:
		return faultf(konnektor.CodePinTimeout, "keine Eingabe der PIN.QES")
	case pinWrong:
		return faultf(konnektor.CodeAccessDenied, "PIN.QES falsch eingegeben; noch %d Versuche", ps.Tries)
	case pinNowBlocked:
		return faultf(konnektor.CodePinBlocked, "PIN.QES falsch eingegeben und jetzt gesperrt")
	}
	return nil
}

// requireVerified checks that the PIN was verified (an unlocked SMC-B, for example).
func (s *Simulator) requireVerified(c *card, pt konnektor.PinType) error {
	ps := s.state.pin(c.cfg.Handle, pt)
	if ps == nil || !ps.Verified || ps.Dead || ps.Tries == 0 {
		return faultf(konnektor.CodeAccessDenied, "%s von %s ist nicht verifiziert", pt, c.cfg.Handle)
	}
	return nil
}
