package konnektorsim

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/wire"
)

// Product data of the simulator, as connector.sds and GetCardTerminals report it.
const (
	productVendorID = "REDSIM"
	productName     = "red Konnektor-Simulator"
	productVersion  = "5.0.0"
)

// directory lists the services: name, WSDL target namespace, version, path.
var directory = []struct {
	name, targetNS, version, path string
}{
	{konnektor.ServiceCard, "http://ws.gematik.de/conn/CardService/WSDL/v8.1", "8.1.2", pathCard},
	{konnektor.ServiceCertificate, "http://ws.gematik.de/conn/CertificateService/WSDL/v6.0", "6.0.1", pathCertificate},
	{konnektor.ServiceEvent, "http://ws.gematik.de/conn/EventService/WSDL/v7.2", "7.2.0", pathEvent},
	{konnektor.ServiceAuthSignature, "http://ws.gematik.de/conn/AuthSignatureService/WSDL/v7.4", "7.4.1", pathAuthSignature},
	{konnektor.ServiceSignature, "http://ws.gematik.de/conn/SignatureService/WSDL/v7.4", "7.4.2", pathSignature},
	{konnektor.ServiceSignature, "http://ws.gematik.de/conn/SignatureService/WSDL/v7.5", "7.5.5", pathSignature},
	{konnektor.ServiceVSD, "http://ws.gematik.de/conn/vsds/VSDService/v5.2", "5.2.0", pathVSD},
}

// serveDirectory answers GET /connector.sds with endpoints on the host the client used.
func (s *Simulator) serveDirectory(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if host == "" {
		host = "127.0.0.1"
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8" standalone="yes"`)
	root := doc.CreateElement("ns2:ConnectorServices")
	root.CreateAttr("xmlns", konnektor.NSProductInformation)
	root.CreateAttr("xmlns:ns2", konnektor.NSServiceDirectory)
	root.CreateAttr("xmlns:ns3", konnektor.NSServiceInformation)
	s.addProductInformation(root, "", "Konnektor", "5.0.0", "RKONN")
	add(root, "ns2:TLSMandatory", "false")
	add(root, "ns2:ClientAutMandatory", "false")
	si := root.CreateElement("ns3:ServiceInformation")
	services := map[string]*etree.Element{}
	for _, d := range directory {
		svc := services[d.name]
		if svc == nil {
			svc = si.CreateElement("ns3:Service")
			svc.CreateAttr("Name", d.name)
			add(svc, "ns3:Abstract", d.name+" (simuliert)")
			svc.CreateElement("ns3:Versions")
			services[d.name] = svc
		}
		v := svc.FindElement("Versions").CreateElement("ns3:Version")
		v.CreateAttr("TargetNamespace", d.targetNS)
		v.CreateAttr("Version", d.version)
		add(v, "ns3:Abstract", d.name+" "+d.version)
		v.CreateElement("ns3:Endpoint").CreateAttr("Location", "http://"+host+d.path)
		v.CreateElement("ns3:EndpointTLS").CreateAttr("Location", "https://"+host+d.path)
	}
	s.writeXML(w, http.StatusOK, doc)
}

// addProductInformation appends a ProductInformation (v1.1) element; prefix "" means the
// default namespace is ProductInformation's.
func (s *Simulator) addProductInformation(parent *etree.Element, prefix, productType, typeVersion, productCode string) {
	p := func(n string) string {
		if prefix == "" {
			return n
		}
		return prefix + ":" + n
	}
	pi := parent.CreateElement(p("ProductInformation"))
	add(pi, p("InformationDate"), xsDateTime(s.started))
	pti := pi.CreateElement(p("ProductTypeInformation"))
	add(pti, p("ProductType"), productType)
	add(pti, p("ProductTypeVersion"), typeVersion)
	id := pi.CreateElement(p("ProductIdentification"))
	add(id, p("ProductVendorID"), productVendorID)
	add(id, p("ProductCode"), productCode)
	local := id.CreateElement(p("ProductVersion")).CreateElement(p("Local"))
	add(local, p("HWVersion"), "1.0.0")
	add(local, p("FWVersion"), productVersion)
	misc := pi.CreateElement(p("ProductMiscellaneous"))
	add(misc, p("ProductVendorName"), "red")
	add(misc, p("ProductName"), productName)
}

// getCards answers EventService GetCards, filtered by CtId, SlotId and CardType.
func (s *Simulator) getCards(req *soapRequest) (*response, error) {
	ctID := wire.Text(req.op.FindElement("CtId"))
	slotText := wire.Text(req.op.FindElement("SlotId"))
	cardType := konnektor.CardType(wire.Text(req.op.FindElement("CardType")))
	slot := 0
	if slotText != "" {
		n, err := strconv.Atoi(slotText)
		if err != nil || n < 1 {
			return nil, syntaxf("SlotId %q is not a positive number", slotText)
		}
		slot = n
	}
	resp := newResponse(req.ns, "GetCardsResponse")
	s.addStatus(resp.op, nil)
	list := resp.op.CreateElement("CARD:Cards")
	for _, c := range s.cards {
		cc := c.cfg
		if ctID != "" && cc.CtID != ctID || slot != 0 && cc.Slot != slot || cardType != "" && cc.Type != cardType {
			continue
		}
		e := list.CreateElement("CARD:Card")
		add(e, "CONN:CardHandle", cc.Handle)
		add(e, "CARDCMN:CardType", string(cc.Type))
		v := e.CreateElement("CARD:CardVersion")
		addVersion(v, "CARD:COSVersion", 4, 4, 0)
		addVersion(v, "CARD:ObjectSystemVersion", 4, 7, 0)
		add(e, "CARDCMN:Iccsn", cc.ICCSN)
		add(e, "CARDCMN:CtId", cc.CtID)
		add(e, "CARDCMN:SlotId", strconv.Itoa(cc.Slot))
		add(e, "CARD:InsertTime", xsDateTime(c.insert))
		add(e, "CARD:CardHolderName", cc.HolderName)
		if cc.Insured != nil {
			add(e, "CARD:Kvnr", cc.Insured.Personal.KVNR)
		}
		add(e, "CARD:CertificateExpirationDate", c.certs[konnektor.CertAUT].Certificate.NotAfter.UTC().Format("2006-01-02"))
	}
	return resp, nil
}

func addVersion(parent *etree.Element, name string, major, minor, revision int) {
	v := parent.CreateElement(name)
	add(v, "CARD:Major", strconv.Itoa(major))
	add(v, "CARD:Minor", strconv.Itoa(minor))
	add(v, "CARD:Revision", strconv.Itoa(revision))
}

// getCardTerminals answers EventService GetCardTerminals.
func (s *Simulator) getCardTerminals(req *soapRequest) (*response, error) {
	resp := newResponse(req.ns, "GetCardTerminalsResponse")
	s.addStatus(resp.op, nil)
	list := resp.op.CreateElement("CT:CardTerminals")
	terminals := append([]TerminalConfig(nil), s.cfg.Terminals...)
	sort.SliceStable(terminals, func(i, j int) bool { return terminals[i].CtID < terminals[j].CtID })
	for _, t := range terminals {
		e := list.CreateElement("CT:CardTerminal")
		s.addProductInformation(e, "PI", "KT", "1.0.0", "SIMKT")
		add(e, "CARDCMN:CtId", t.CtID)
		ws := e.CreateElement("CONN:WorkplaceIds")
		for _, w := range t.WorkplaceIDs {
			add(ws, "CONN:WorkplaceId", w)
		}
		add(e, "CT:Name", t.Name)
		add(e, "CT:MacAddress", t.MacAddress)
		if t.IPAddress != "" {
			version := "CT:IPV4Address"
			if strings.Contains(t.IPAddress, ":") {
				version = "CT:IPV6Address"
			}
			add(e.CreateElement("CT:IPAddress"), version, t.IPAddress)
		}
		add(e, "CT:Slots", strconv.Itoa(t.Slots))
		add(e, "CT:IS_PHYSICAL", "true")
		add(e, "CT:Connected", strconv.FormatBool(!t.Disconnected))
	}
	return resp, nil
}
