package konnektor_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/ti/cms"
	"github.com/redclone/red/ti/konnektor"
)

// examples are gematik's sample messages (Apache-2.0, see testdata/gematik/NOTICE); the
// simulator's tests read their requests here too.
const examples = "testdata/gematik"

const (
	epaResponses = "api-ePA/samples/ePA 1 Beispielnachrichten PS - Konnektor/Responses/"
	erpExamples  = "eRezept-Examples/API-Examples/2025-01-15/"
	qesSigned    = "api-erp/samples/qes/signed/"
)

func readExample(t testing.TB, rel string) []byte {
	t.Helper()
	return fixture.Read(t, filepath.Join(examples, rel))
}

// replay serves the RISE connector.sds (its endpoints moved to the test server) and answers
// every SOAP call with body, after checking path and SOAPAction.
func replay(t testing.TB, wantPath, wantAction string, body []byte) *konnektor.Client {
	t.Helper()
	sds := readExample(t, epaResponses+"connector.sds.xml")
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/connector.sds" {
			out := bytes.ReplaceAll(sds, []byte("http://10.11.218.161:80"), []byte(srv.URL))
			w.Header().Set("Content-Type", "application/xml")
			_, _ = w.Write(out)
			return
		}
		if r.URL.Path != wantPath {
			t.Errorf("called %s, want %s", r.URL.Path, wantPath)
		}
		if got := r.Header.Get("SOAPAction"); got != `"`+wantAction+`"` {
			t.Errorf("SOAPAction %s, want %q", got, wantAction)
		}
		w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return &konnektor.Client{
		BaseURL: srv.URL,
		HTTP:    srv.Client(),
		Context: konnektor.Context{MandantID: "Mandant1", ClientSystemID: "CS1", WorkplaceID: "AP1", UserID: "user1"},
	}
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestServiceDirectorySample(t *testing.T) {
	dir, err := konnektor.ParseServiceDirectory(readExample(t, epaResponses+"connector.sds.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if dir.VendorID != "RISEG" || dir.ProductName != "RISE Konnektor" || dir.FWVersion != "3.0.7" || dir.TLSMandatory {
		t.Errorf("product %+v", dir)
	}
	for _, tc := range []struct {
		service, want, endpoint string
		accept                  []string
	}{
		{konnektor.ServiceCard, "8.1.2", "http://10.11.218.161:80/webservices/cardservice", []string{"8.1"}},
		{konnektor.ServiceSignature, "7.4.2", "http://10.11.218.161:80/webservices/signatureservice", []string{"7.5", "7.4"}},
		{konnektor.ServiceVSD, "5.2.0", "http://10.11.218.161:80/fm/vsdservice", []string{"5.2"}},
		{konnektor.ServiceCertificate, "6.0.1", "http://10.11.218.161:80/webservices/certificateservice", []string{"6.0"}},
	} {
		t.Run("finds "+tc.service, func(t *testing.T) {
			v, ok := dir.Find(tc.service, tc.accept...)
			if !ok || v.Version != tc.want || v.Endpoint != tc.endpoint || !strings.HasPrefix(v.EndpointTLS, "https://") {
				t.Errorf("got %+v, %v", v, ok)
			}
		})
	}
	t.Run("finds no SignatureService 7.5", func(t *testing.T) {
		if v, ok := dir.Find(konnektor.ServiceSignature, "7.5"); ok {
			t.Errorf("found %+v", v)
		}
	})
}

func TestResponseSamples(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		file   string
		path   string
		action string
		call   func(*konnektor.Client) (any, error)
		check  func(*testing.T, any)
	}{
		{
			name: "parses GetCards of a RISE Konnektor", file: epaResponses + "getcards-resp.xml",
			path: "/webservices/eventservice", action: konnektor.NSEventService + "#GetCards",
			call: func(c *konnektor.Client) (any, error) { return c.GetCards(ctx, konnektor.Filter{}) },
			check: func(t *testing.T, v any) {
				cards := v.([]konnektor.Card)
				if len(cards) != 2 {
					t.Fatalf("%d cards", len(cards))
				}
				want := konnektor.Card{
					Handle: "baa41ac2-4c66-4d7c-aaf5-26281b6e400e", Type: konnektor.CardSMCB, ICCSN: "80276883110000092399",
					CtID: "00:50:56:B4:3B:D5", SlotID: 1, InsertTime: mustTime(t, "2021-01-22T17:42:00.983Z"),
					HolderName: "Praxis David Graf MünchhausenTEST-ONLY", CertificateExpiration: mustTime(t, "2022-11-30T00:00:00Z"),
					COSVersion: "4.3.0", ObjectSystemVersion: "4.3.0",
				}
				if got := cards[0]; !sameCard(got, want) {
					t.Errorf("card %+v\nwant %+v", got, want)
				}
				if cards[1].Type != konnektor.CardHBA || cards[1].SlotID != 3 || cards[1].ObjectSystemVersion != "4.3.1" {
					t.Errorf("second card %+v", cards[1])
				}
			},
		},
		{
			name: "parses a bare GetCardsResponse with an eGK", file: erpExamples + "erp_abrufen_egk/02_GetCards_Response.xml",
			path: "/webservices/eventservice", action: konnektor.NSEventService + "#GetCards",
			call: func(c *konnektor.Client) (any, error) {
				return c.GetCards(ctx, konnektor.Filter{CtID: "Terminal1", CardType: konnektor.CardEGK})
			},
			check: func(t *testing.T, v any) {
				cards := v.([]konnektor.Card)
				if len(cards) != 1 || cards[0].KVNR != "K010124021" || cards[0].Type != konnektor.CardEGK || cards[0].HolderName != "Patientin Muster" || cards[0].SlotID != 2 {
					t.Errorf("cards %+v", cards)
				}
			},
		},
		{
			name: "parses GetPinStatus", file: epaResponses + "getpinstatus-resp.xml",
			path: "/webservices/cardservice", action: konnektor.NSCardService + "#GetPinStatus",
			call: func(c *konnektor.Client) (any, error) { return c.GetPinStatus(ctx, "h", konnektor.PinSMC) },
			check: func(t *testing.T, v any) {
				if got := v.(konnektor.PinStatus); got != (konnektor.PinStatus{State: konnektor.PinVerified, LeftTries: -1}) {
					t.Errorf("got %+v", got)
				}
			},
		},
		{
			name: "parses VerifyPin", file: epaResponses + "verifypin-resp.xml",
			path: "/webservices/cardservice", action: konnektor.NSCardService + "#VerifyPin",
			call: func(c *konnektor.Client) (any, error) { return c.VerifyPin(ctx, "h", konnektor.PinSMC) },
			check: func(t *testing.T, v any) {
				got := v.(konnektor.PinResponse)
				if got.Result != konnektor.PinOK || got.LeftTries != -1 || got.Status.Result != konnektor.ResultOK || got.Status.Error != nil {
					t.Errorf("got %+v", got)
				}
			},
		},
		{
			name: "parses ReadCardCertificate with a brainpool certificate", file: erpExamples + "authentisieren/02_response_ReadCardCertificate.xml",
			path: "/webservices/certificateservice", action: konnektor.NSCertificateService + "#ReadCardCertificate",
			call: func(c *konnektor.Client) (any, error) {
				return c.ReadCardCertificate(ctx, "SMC-B-15", konnektor.CertAUT)
			},
			check: func(t *testing.T, v any) {
				certs := v.([]konnektor.CardCertificate)
				if len(certs) != 1 {
					t.Fatalf("%d certificates", len(certs))
				}
				c := certs[0]
				if c.Ref != konnektor.CertAUT || len(c.DER) < 900 || c.SerialNumber != "384074971647989" ||
					c.IssuerName != "CN=GEM.SMCB-CA57 TEST-ONLY,OU=Institution des Gesundheitswesens-CA der Telematikinfrastruktur,O=gematik NOT-VALID,C=DE" ||
					!strings.HasPrefix(c.SubjectName, "CN=Praxis Peer Graf von MüllerTEST-ONLY,") {
					t.Errorf("certificate %+v", c)
				}
			},
		},
		{
			name: "parses VerifyCertificate", file: erpExamples + "authentisieren/04_response_VerifyCertificate.xml",
			path: "/webservices/certificateservice", action: konnektor.NSCertificateService + "#VerifyCertificate",
			call: func(c *konnektor.Client) (any, error) { return c.VerifyCertificate(ctx, []byte{0x30}) },
			check: func(t *testing.T, v any) {
				got := v.(konnektor.CertificateVerification)
				if got.Result != konnektor.Valid || len(got.Roles) != 1 || got.Roles[0] != "1.2.276.0.76.4.260" {
					t.Errorf("got %+v", got)
				}
			},
		},
		{
			name: "parses ExternalAuthenticate", file: erpExamples + "authentisieren/06_response_ExternalAuthenticate.xml",
			path: "/webservices/authsignatureservice", action: konnektor.NSSignatureService74 + "#ExternalAuthenticate",
			call: func(c *konnektor.Client) (any, error) {
				return c.ExternalAuthenticate(ctx, "SMC-B-15", make([]byte, 32))
			},
			check: func(t *testing.T, v any) {
				got := v.(konnektor.AuthSignature)
				if got.Type != konnektor.SignatureTypeECDSA || len(got.Value) != 70 || got.Value[0] != 0x30 {
					t.Errorf("got %s %x", got.Type, got.Value)
				}
			},
		},
		{
			name: "parses SignDocument of the E-Rezept example", file: erpExamples + "erp_bereitstellen/04_response_SignDocument.xml",
			path: "/webservices/signatureservice", action: konnektor.NSSignatureService74 + "#SignDocument",
			call: func(c *konnektor.Client) (any, error) {
				return c.SignDocuments(ctx, "HBA-16", []konnektor.Document{{RequestID: "51cff46a-3478-462b-91bf-19967d906cab", Content: []byte("x")}})
			},
			check: func(t *testing.T, v any) {
				sigs := v.([]konnektor.Signature)
				checkSignature(t, sigs, "51cff46a-3478-462b-91bf-19967d906cab")
			},
		},
		{
			name: "parses VerifyDocument of the E-Rezept example", file: erpExamples + "erp_abrufen/05_response_VerifySignatureTask.xml",
			path: "/webservices/signatureservice", action: konnektor.NSSignatureService74 + "#VerifyDocument",
			call:  func(c *konnektor.Client) (any, error) { return c.VerifyDocument(ctx, []byte{0x30}, nil) },
			check: checkVerification("2023-08-24T14:02:36Z"),
		},
		{
			name: "parses ReadVSD of a KoCoBox", file: erpExamples + "erp_abrufen_egk/04_01_ReadVSD_Response_KOCO.xml",
			path: "/fm/vsdservice", action: konnektor.NSVSDService + "#ReadVSD",
			call: func(c *konnektor.Client) (any, error) { return c.ReadVSD(ctx, "egk", "smcb", true, true) },
			check: func(t *testing.T, v any) {
				got := v.(konnektor.VSD)
				want := konnektor.PersonalData{KVNR: "F405001079", BirthDate: "19561007", GivenName: "Tvsd", FamilyName: "Wagner", Sex: "M",
					Street: "Kortrijker Str.", HouseNumber: "1", PostalCode: "53177", City: "Bonn", CountryCode: "D"}
				if got.Personal != want {
					t.Errorf("personal %+v", got.Personal)
				}
				if got.Insurance.PayerName != "AOK Baden-Württemberg" || got.Insurance.PayerIK != "108018007" || got.Insurance.WOP != "38" || got.Insurance.CoverageStart != "19680201" {
					t.Errorf("insurance %+v", got.Insurance)
				}
				if got.Protected == nil || got.Protected.CopaymentStatus != "0" {
					t.Errorf("protected %+v", got.Protected)
				}
				pn := got.Pruefungsnachweis
				if pn == nil || pn.Result != 3 || pn.CheckDigit != "" || !pn.Timestamp.Equal(mustTime(t, "2025-01-13T08:18:53Z")) || got.PruefungsnachweisBase64 == "" {
					t.Errorf("Prüfungsnachweis %+v", pn)
				}
				if got.Status.Status != "0" || got.Status.Version != "5.2.0" {
					t.Errorf("status %+v", got.Status)
				}
			},
		},
		{
			name: "parses ReadVSD of a RISE Konnektor", file: erpExamples + "erp_abrufen_egk/04_02_ReadVSD_Response_Rise.xml",
			path: "/fm/vsdservice", action: konnektor.NSVSDService + "#ReadVSD",
			call: func(c *konnektor.Client) (any, error) { return c.ReadVSD(ctx, "egk", "smcb", true, true) },
			check: func(t *testing.T, v any) {
				got := v.(konnektor.VSD)
				if got.Personal.Street != "Lübecker Str." || got.Personal.Prefix != "von" || got.Personal.Title != "Dr." {
					t.Errorf("personal %+v", got.Personal)
				}
				if got.Insurance.BillingIK != "101577500" || got.Insurance.BillingName != "TK" || got.Insurance.WOP != "01" {
					t.Errorf("insurance %+v", got.Insurance)
				}
				if got.Protected == nil || got.Protected.SpecialGroup != "6" {
					t.Errorf("protected %+v", got.Protected)
				}
				if got.Pruefungsnachweis == nil || got.Pruefungsnachweis.Result != 2 || !strings.HasPrefix(got.Pruefungsnachweis.CheckDigit, "RjgwMTAw") {
					t.Errorf("Prüfungsnachweis %+v", got.Pruefungsnachweis)
				}
			},
		},
		{
			name: "parses ReadVSD of a secunet Konnektor", file: erpExamples + "erp_abrufen_egk/04_03_ReadVSD_Response_Secunet.xml",
			path: "/fm/vsdservice", action: konnektor.NSVSDService + "#ReadVSD",
			call: func(c *konnektor.Client) (any, error) { return c.ReadVSD(ctx, "egk", "smcb", true, true) },
			check: func(t *testing.T, v any) {
				got := v.(konnektor.VSD)
				if got.Personal.AddressSupplement != "12. Etage" || got.Personal.City != "Hamburg" || got.Personal.KVNR != "F801004277" {
					t.Errorf("personal %+v", got.Personal)
				}
				if got.Pruefungsnachweis == nil || got.Pruefungsnachweis.Result != 1 || got.Pruefungsnachweis.CheckDigit == "" {
					t.Errorf("Prüfungsnachweis %+v", got.Pruefungsnachweis)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := replay(t, tc.path, tc.action, readExample(t, tc.file))
			got, err := tc.call(c)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, got)
		})
	}
}

// TestQESSamples replays the SignDocument and VerifyDocument answers of three Konnektor vendors.
func TestQESSamples(t *testing.T) {
	files := fixture.Glob(t, filepath.Join(examples, qesSigned, "*_resp.xml"))
	ctx := context.Background()
	for _, f := range files {
		rel, _ := filepath.Rel(examples, f)
		name := filepath.Base(f)
		verify := strings.Contains(name, "_V_")
		t.Run("parses "+name, func(t *testing.T) {
			op := "#SignDocument"
			if verify {
				op = "#VerifyDocument"
			}
			c := replay(t, "/webservices/signatureservice", konnektor.NSSignatureService74+op, readExample(t, rel))
			if verify {
				v, err := c.VerifyDocument(ctx, []byte{0x30}, nil)
				if err != nil {
					t.Fatal(err)
				}
				want, warning := konnektor.Valid, 0
				if strings.Contains(name, "_V_KOCOC") { // the KoCoBox could not use the embedded OCSP responses
					want, warning = konnektor.Inconclusive, 1050
				}
				if v.Status.Error.Code() != warning || warning != 0 && !strings.EqualFold(v.Status.Result, konnektor.ResultWarning) {
					t.Errorf("status %+v", v.Status)
				}
				if v.HighLevelResult != want || v.Timestamp.Year() != 2021 || v.SigningTime.Year() != 2021 ||
					v.ResultMajor != "urn:oasis:names:tc:dss:1.0:resultmajor:Success" || !strings.Contains(v.Signer, "Schraßer") {
					t.Errorf("verification %+v", v)
				}
				return
			}
			sigs, err := c.SignDocuments(ctx, "HBA-5", []konnektor.Document{{RequestID: "Doc1", ID: "CMS-Doc1", Content: []byte("x")}})
			if err != nil {
				t.Fatal(err)
			}
			checkSignature(t, sigs, "Doc1")
		})
	}
}

func checkSignature(t testing.TB, sigs []konnektor.Signature, requestID string) {
	t.Helper()
	if len(sigs) != 1 {
		t.Fatalf("%d signatures", len(sigs))
	}
	s := sigs[0]
	if s.RequestID != requestID || s.DocumentID != "CMS-Doc1" || s.Status.Result != konnektor.ResultOK || s.Type != konnektor.SignatureTypeCMS {
		t.Errorf("signature %+v", s)
	}
	info, err := cms.Inspect(s.Value)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(info.Content, []byte("<Bundle")) {
		t.Errorf("signed content %.30q", info.Content)
	}
}

func checkVerification(timestamp string) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		got := v.(konnektor.Verification)
		if got.HighLevelResult != konnektor.Valid || got.TimestampType != "SIGNATURE_EMBEDDED_TIMESTAMP" || !got.Timestamp.Equal(mustTime(t, timestamp)) || !got.SigningTime.Equal(mustTime(t, timestamp)) {
			t.Errorf("verification %+v", got)
		}
	}
}

func sameCard(a, b konnektor.Card) bool {
	return a.Handle == b.Handle && a.Type == b.Type && a.ICCSN == b.ICCSN && a.CtID == b.CtID && a.SlotID == b.SlotID &&
		a.InsertTime.Equal(b.InsertTime) && a.HolderName == b.HolderName && a.CertificateExpiration.Equal(b.CertificateExpiration) &&
		a.COSVersion == b.COSVersion && a.ObjectSystemVersion == b.ObjectSystemVersion && a.KVNR == b.KVNR
}

func TestKomfortsignaturNeedsSignatureService75(t *testing.T) {
	c := replay(t, "", "", nil)
	_, err := c.GetSignatureMode(context.Background(), "HBA-16")
	if !errors.Is(err, konnektor.ErrUnsupported) {
		t.Errorf("error %v, want ErrUnsupported", err)
	}
}

func TestFault(t *testing.T) {
	body := []byte(`<?xml version="1.0"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault>
<faultcode>S:Server</faultcode><faultstring>Zugriffsbedingungen nicht erfüllt</faultstring>
<detail><e:Error xmlns:e="http://ws.gematik.de/tel/error/v2.0"><e:MessageID>m1</e:MessageID><e:Timestamp>2025-01-15T10:00:00Z</e:Timestamp>
<e:Trace><e:EventID>e1</e:EventID><e:Instance>i</e:Instance><e:LogReference>l</e:LogReference><e:CompType>KON</e:CompType><e:Code>4085</e:Code>
<e:Severity>Error</e:Severity><e:ErrorType>Security</e:ErrorType><e:ErrorText>Zugriffsbedingungen nicht erfüllt</e:ErrorText><e:Detail>PIN.SMC</e:Detail></e:Trace>
</e:Error></detail></S:Fault></S:Body></S:Envelope>`)
	sds := readExample(t, epaResponses+"connector.sds.xml")
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/connector.sds" {
			_, _ = w.Write(bytes.ReplaceAll(sds, []byte("http://10.11.218.161:80"), []byte(srv.URL)))
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	c := &konnektor.Client{BaseURL: srv.URL, Context: konnektor.Context{MandantID: "m", ClientSystemID: "c", WorkplaceID: "w"}}
	_, err := c.ExternalAuthenticate(context.Background(), "SMC-B-15", make([]byte, 32))
	var f *konnektor.Fault
	if !errors.As(err, &f) {
		t.Fatalf("error %v is no *Fault", err)
	}
	if f.Code() != 4085 || konnektor.FaultCode(err) != 4085 || f.HTTPStatus != 500 || f.MessageID != "m1" || f.Traces[0].ErrorType != "Security" || f.Traces[0].Detail != "PIN.SMC" {
		t.Errorf("fault %+v", f)
	}
	if !strings.Contains(err.Error(), "4085") {
		t.Errorf("message %q", err)
	}
}

func TestHCV(t *testing.T) {
	for _, tc := range []struct {
		name, begin, street, want string
	}{
		{"matches the gematik example", "20180111", "Beispielstrasse", "F9ZD7cI"},
		{"ignores spaces in the begin and around the street", "2018 01 11", "  Beispielstrasse ", "F9ZD7cI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := konnektor.VSD{Insurance: konnektor.InsuranceData{CoverageStart: tc.begin}, Personal: konnektor.PersonalData{Street: tc.street}}
			got, err := v.HCV()
			if err != nil || got != tc.want {
				t.Errorf("HCV() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestXSDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"PT24H", 24 * time.Hour},
		{"P1D", 24 * time.Hour},
		{"PT23H59M30S", 23*time.Hour + 59*time.Minute + 30*time.Second},
		{"PT0S", 0},
		{"PT1.5S", 1500 * time.Millisecond},
	} {
		t.Run("reads "+tc.in, func(t *testing.T) {
			got, err := konnektor.ParseXSDuration(tc.in)
			if err != nil || got != tc.want {
				t.Errorf("got %v, %v", got, err)
			}
		})
	}
	for _, bad := range []string{"", "24h", "P", "PT5", "P1Y"} {
		t.Run("refuses "+bad, func(t *testing.T) {
			if _, err := konnektor.ParseXSDuration(bad); err == nil {
				t.Error("no error")
			}
		})
	}
	t.Run("writes what it reads", func(t *testing.T) {
		for _, d := range []time.Duration{0, time.Second, 24 * time.Hour, 23*time.Hour + 59*time.Minute + 30*time.Second} {
			got, err := konnektor.ParseXSDuration(konnektor.FormatXSDuration(d))
			if err != nil || got != d {
				t.Errorf("%v: %q → %v, %v", d, konnektor.FormatXSDuration(d), got, err)
			}
		}
	})
}
