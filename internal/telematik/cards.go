package telematik

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/ti/konnektor"
)

// cardElement renders one card as RED's <Card>.
func cardElement(parent *etree.Element, c konnektor.Card) *etree.Element {
	e := parent.CreateElement("Card")
	text(e, "CardType", string(c.Type))
	text(e, "CardHandle", c.Handle)
	text(e, "Iccsn", c.ICCSN)
	text(e, "CtId", c.CtID)
	text(e, "SlotId", strconv.Itoa(c.SlotID))
	if c.HolderName != "" && c.Type != konnektor.CardEGK {
		text(e, "CardHolderName", c.HolderName)
	}
	return e
}

// getCards answers $getcards: every inserted card (optionally of one terminal, cardreader=IP).
// An eGK's holder name is left out: it is person data the caller gets through $egkfetch.
func (s *Service) getCards(ctx context.Context, q url.Values, _ *etree.Element) (Answer, error) {
	cards, err := s.cardsOf(ctx, q.Get("cardreader"), "")
	if err != nil {
		return Answer{}, err
	}
	resp := connectorResponse()
	for _, c := range cards {
		cardElement(resp, c)
	}
	return Answer{http.StatusOK, resp}, nil
}

// telematikIDs answers $telematikids: the HBA and SMC-B cards with the Telematik-ID and
// profession from their authentication certificate.
func (s *Service) telematikIDs(ctx context.Context, q url.Values, _ *etree.Element) (Answer, error) {
	cards, err := s.cardsOf(ctx, q.Get("cardreader"), "")
	if err != nil {
		return Answer{}, err
	}
	resp := connectorResponse()
	for _, c := range cards {
		if !cardIs(c, konnektor.CardHBA, konnektor.CardSMCB) {
			continue
		}
		cert, err := s.certificate(ctx, c.Handle, konnektor.CertAUT)
		if err != nil {
			return Answer{}, err
		}
		e := cardElement(resp, c)
		a := professionOf(cert)
		text(e, "TelematikId", a.RegistrationNumber)
		for i, item := range a.ProfessionItems {
			p := e.CreateElement("Profession")
			text(p, "Name", item)
			if i < len(a.ProfessionOIDs) {
				text(p, "Oid", a.ProfessionOIDs[i])
			}
		}
	}
	return Answer{http.StatusOK, resp}, nil
}

// pinTypes are the PINs of each card type.
func pinTypes(c konnektor.Card) []konnektor.PinType {
	switch {
	case cardIs(c, konnektor.CardHBA):
		return []konnektor.PinType{konnektor.PinCH, konnektor.PinQES}
	case cardIs(c, konnektor.CardSMCB, konnektor.CardSMB):
		return []konnektor.PinType{konnektor.PinSMC}
	case c.Type == konnektor.CardEGK:
		return []konnektor.PinType{konnektor.PinCH}
	}
	return nil
}

// getPinStatus answers $getpinstatus: the status of every PIN of every card (or of one card,
// card=handle / cardname=name). RED warns this is slow: each card is asked.
func (s *Service) getPinStatus(ctx context.Context, q url.Values, _ *etree.Element) (Answer, error) {
	var cards []konnektor.Card
	if q.Get("card") != "" || q.Get("cardhandle") != "" || q.Get("cardname") != "" {
		c, err := s.card(ctx, q)
		if err != nil {
			return Answer{}, err
		}
		cards = []konnektor.Card{c}
	} else {
		var err error
		if cards, err = s.cardsOf(ctx, q.Get("cardreader"), ""); err != nil {
			return Answer{}, err
		}
	}
	resp := connectorResponse()
	for _, c := range cards {
		types := pinTypes(c)
		if len(types) == 0 {
			continue
		}
		e := cardElement(resp, c)
		for _, pt := range types {
			var st konnektor.PinStatus
			if err := s.call(ctx, "Konnektor", func(ctx context.Context) (err error) {
				st, err = s.Konnektor.GetPinStatus(ctx, c.Handle, pt)
				return err
			}); err != nil {
				return Answer{}, err
			}
			p := e.CreateElement("PinStatus")
			text(p, "PinType", string(pt))
			text(p, "Status", string(st.State))
			if st.LeftTries >= 0 {
				text(p, "LeftTries", strconv.Itoa(st.LeftTries))
			}
		}
	}
	return Answer{http.StatusOK, resp}, nil
}

// pinOp runs a PIN operation on the card the query names; pintype defaults to the card's main PIN
// (PIN.QES on an HBA, PIN.SMC on an SMC-B, PIN.CH on an eGK). The PIN itself is typed at the
// card terminal, never sent through red.
func (s *Service) pinOp(ctx context.Context, q url.Values, op func(ctx context.Context, handle string, pt konnektor.PinType) (konnektor.PinResponse, error)) (Answer, error) {
	c, err := s.card(ctx, q)
	if err != nil {
		return Answer{}, err
	}
	types := pinTypes(c)
	if len(types) == 0 {
		return Answer{}, fhir.Fail(fhir.CodeNotSupported, "card", "%s cards have no PIN red can manage", c.Type)
	}
	pt := types[len(types)-1]
	if v := q.Get("pintype"); v != "" {
		pt = konnektor.PinType(v)
		found := false
		for _, t := range types {
			found = found || t == pt
		}
		if !found {
			return Answer{}, fhir.Fail(fhir.CodeValue, "pintype", "a %s card has the PINs %v", c.Type, types)
		}
	}
	var r konnektor.PinResponse
	if err := s.call(ctx, "Konnektor", func(ctx context.Context) (err error) {
		r, err = op(ctx, c.Handle, pt)
		return err
	}); err != nil {
		return Answer{}, err
	}
	resp := connectorResponse()
	text(resp, "CardHandle", c.Handle)
	text(resp, "PinType", string(pt))
	text(resp, "PinResult", string(r.Result))
	if r.LeftTries >= 0 {
		text(resp, "LeftTries", strconv.Itoa(r.LeftTries))
	}
	status := http.StatusOK
	if r.Result != konnektor.PinOK {
		status = http.StatusBadRequest
	}
	return Answer{status, resp}, nil
}

func (s *Service) verifyPin(ctx context.Context, q url.Values, _ *etree.Element) (Answer, error) {
	return s.pinOp(ctx, q, s.Konnektor.VerifyPin)
}

func (s *Service) changePin(ctx context.Context, q url.Values, _ *etree.Element) (Answer, error) {
	return s.pinOp(ctx, q, s.Konnektor.ChangePin)
}

func (s *Service) unblockPin(ctx context.Context, q url.Values, _ *etree.Element) (Answer, error) {
	setNew := q.Get("setnewpin") != "false"
	return s.pinOp(ctx, q, func(ctx context.Context, handle string, pt konnektor.PinType) (konnektor.PinResponse, error) {
		return s.Konnektor.UnblockPin(ctx, handle, pt, setNew)
	})
}
