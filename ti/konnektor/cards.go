package konnektor

import (
	"context"
	"fmt"
	"strconv"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/wire"
)

// GetCards lists the inserted cards (EventService 7.2), narrowed by filter.
func (c *Client) GetCards(ctx context.Context, filter Filter) ([]Card, error) {
	ep, _, err := c.endpoint(ctx, ServiceEvent, "7.2")
	if err != nil {
		return nil, err
	}
	r := newRequest(NSEventService, "GetCards")
	r.op.CreateAttr("mandant-wide", strconv.FormatBool(filter.MandantWide))
	c.addContext(r.op)
	if filter.CtID != "" {
		add(r.op, "CARDCMN:CtId", filter.CtID)
	}
	if filter.SlotID > 0 {
		add(r.op, "CARDCMN:SlotId", strconv.Itoa(filter.SlotID))
	}
	if filter.CardType != "" {
		add(r.op, "CARDCMN:CardType", string(filter.CardType))
	}
	resp, err := c.call(ctx, ep, NSEventService, "GetCards", r)
	if err != nil {
		return nil, err
	}
	return parseGetCards(resp)
}

func parseGetCards(resp *etree.Element) ([]Card, error) {
	if err := statusError("GetCards", parseStatus(resp)); err != nil {
		return nil, err
	}
	var cards []Card
	for _, e := range resp.FindElements("Cards/Card") {
		slot, err := intText(e, "SlotId", 0)
		if err != nil {
			return nil, fmt.Errorf("konnektor: GetCards: %w", err)
		}
		card := Card{
			Handle:              text(e, "CardHandle"),
			Type:                CardType(text(e, "CardType")),
			ICCSN:               text(e, "Iccsn"),
			CtID:                text(e, "CtId"),
			SlotID:              slot,
			HolderName:          text(e, "CardHolderName"),
			KVNR:                text(e, "Kvnr"),
			COSVersion:          versionText(e.FindElement("CardVersion/COSVersion")),
			ObjectSystemVersion: versionText(e.FindElement("CardVersion/ObjectSystemVersion")),
		}
		if s := text(e, "InsertTime"); s != "" {
			if card.InsertTime, err = parseTime(s); err != nil {
				return nil, fmt.Errorf("konnektor: GetCards: InsertTime: %w", err)
			}
		}
		if s := text(e, "CertificateExpirationDate"); s != "" {
			if card.CertificateExpiration, err = parseTime(s); err != nil {
				return nil, fmt.Errorf("konnektor: GetCards: CertificateExpirationDate: %w", err)
			}
		}
		cards = append(cards, card)
	}
	return cards, nil
}

func versionText(e *etree.Element) string {
	if e == nil {
		return ""
	}
	return text(e, "Major") + "." + text(e, "Minor") + "." + text(e, "Revision")
}

// GetCardTerminals lists the card terminals (EventService 7.2).
func (c *Client) GetCardTerminals(ctx context.Context, mandantWide bool) ([]CardTerminal, error) {
	ep, _, err := c.endpoint(ctx, ServiceEvent, "7.2")
	if err != nil {
		return nil, err
	}
	r := newRequest(NSEventService, "GetCardTerminals")
	r.op.CreateAttr("mandant-wide", strconv.FormatBool(mandantWide))
	c.addContext(r.op)
	resp, err := c.call(ctx, ep, NSEventService, "GetCardTerminals", r)
	if err != nil {
		return nil, err
	}
	return parseGetCardTerminals(resp)
}

func parseGetCardTerminals(resp *etree.Element) ([]CardTerminal, error) {
	if err := statusError("GetCardTerminals", parseStatus(resp)); err != nil {
		return nil, err
	}
	var out []CardTerminal
	for _, e := range resp.FindElements("CardTerminals/CardTerminal") {
		slots, err := intText(e, "Slots", 0)
		if err != nil {
			return nil, fmt.Errorf("konnektor: GetCardTerminals: %w", err)
		}
		t := CardTerminal{
			CtID:        text(e, "CtId"),
			Name:        text(e, "Name"),
			MacAddress:  text(e, "MacAddress"),
			IPv4Address: text(e, "IPAddress/IPV4Address"),
			IPv6Address: text(e, "IPAddress/IPV6Address"),
			Slots:       slots,
			Physical:    boolText(e, "IS_PHYSICAL"),
			Connected:   boolText(e, "Connected"),
		}
		for _, w := range e.FindElements("WorkplaceIds/WorkplaceId") {
			t.WorkplaceIDs = append(t.WorkplaceIDs, wire.Text(w))
		}
		out = append(out, t)
	}
	return out, nil
}

// GetPinStatus reads the state and retry counter of a PIN (CardService 8.1).
func (c *Client) GetPinStatus(ctx context.Context, cardHandle string, pin PinType) (PinStatus, error) {
	resp, err := c.pinCall(ctx, "GetPinStatus", cardHandle, pin, nil)
	if err != nil {
		return PinStatus{}, err
	}
	return parsePinStatus(resp)
}

func parsePinStatus(resp *etree.Element) (PinStatus, error) {
	if err := statusError("GetPinStatus", parseStatus(resp)); err != nil {
		return PinStatus{}, err
	}
	left, err := intText(resp, "LeftTries", -1)
	if err != nil {
		return PinStatus{}, fmt.Errorf("konnektor: GetPinStatus: %w", err)
	}
	return PinStatus{State: PinState(text(resp, "PinStatus")), LeftTries: left}, nil
}

// VerifyPin asks the card holder to enter the PIN at the terminal. A wrong PIN is not an
// error: the response says REJECTED (with the tries left), NOWBLOCKED, WASBLOCKED or
// TRANSPORT_PIN.
func (c *Client) VerifyPin(ctx context.Context, cardHandle string, pin PinType) (PinResponse, error) {
	resp, err := c.pinCall(ctx, "VerifyPin", cardHandle, pin, nil)
	if err != nil {
		return PinResponse{}, err
	}
	return parsePinResponse("VerifyPin", resp)
}

// ChangePin asks the card holder to enter the old and the new PIN at the terminal; it also
// replaces a transport PIN by a personal one.
func (c *Client) ChangePin(ctx context.Context, cardHandle string, pin PinType) (PinResponse, error) {
	resp, err := c.pinCall(ctx, "ChangePin", cardHandle, pin, nil)
	if err != nil {
		return PinResponse{}, err
	}
	return parsePinResponse("ChangePin", resp)
}

// UnblockPin asks the card holder to enter the PUK (and, with setNewPin, a new PIN) at the
// terminal; it resets the PIN's retry counter.
func (c *Client) UnblockPin(ctx context.Context, cardHandle string, pin PinType, setNewPin bool) (PinResponse, error) {
	resp, err := c.pinCall(ctx, "UnblockPin", cardHandle, pin, func(op *etree.Element) {
		add(op, "m:SetNewPin", strconv.FormatBool(setNewPin))
	})
	if err != nil {
		return PinResponse{}, err
	}
	return parsePinResponse("UnblockPin", resp)
}

func (c *Client) pinCall(ctx context.Context, op, cardHandle string, pin PinType, extra func(*etree.Element)) (*etree.Element, error) {
	ep, _, err := c.endpoint(ctx, ServiceCard, "8.1")
	if err != nil {
		return nil, err
	}
	r := newRequest(NSCardService, op)
	c.addContext(r.op)
	add(r.op, "CONN:CardHandle", cardHandle)
	add(r.op, "CARDCMN:PinTyp", string(pin))
	if extra != nil {
		extra(r.op)
	}
	return c.call(ctx, ep, NSCardService, op, r)
}

func parsePinResponse(op string, resp *etree.Element) (PinResponse, error) {
	st := parseStatus(resp)
	if err := statusError(op, st); err != nil {
		return PinResponse{}, err
	}
	left, err := intText(resp, "LeftTries", -1)
	if err != nil {
		return PinResponse{}, fmt.Errorf("konnektor: %s: %w", op, err)
	}
	return PinResponse{Status: st, Result: PinResult(text(resp, "PinResult")), LeftTries: left}, nil
}
