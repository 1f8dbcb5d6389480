package wire_test

import (
	"bytes"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/wire"
)

func TestReadXML(t *testing.T) {
	deep := strings.Repeat("<a>", 65) + strings.Repeat("</a>", 65)
	tests := []struct {
		name     string
		data     []byte
		wantText string // text of the root
		wantErr  string // part of the error; "" for success
	}{
		{"reads UTF-8", []byte(`<?xml version="1.0" encoding="UTF-8"?><r>Straße €</r>`), "Straße €", ""},
		{"reads a document without declaration", []byte(`<r>x</r>`), "x", ""},
		{"decodes ISO-8859-15", []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-15\" standalone=\"yes\"?><r>Stra\xdfe \xa4</r>"), "Straße €", ""},
		{"decodes ISO-8859-1", []byte("<?xml version='1.0' encoding='iso-8859-1'?><r>Stra\xdfe \xa4</r>"), "Straße ¤", ""},
		{"refuses other charsets", []byte(`<?xml version="1.0" encoding="EBCDIC"?><r/>`), "", "charset"},
		{"refuses a DOCTYPE", []byte(`<!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>`), "", "DOCTYPE"},
		{"refuses deep nesting", []byte(deep), "", "nested"},
		{"refuses XML that is not well-formed", []byte(`<r>`), "", "well-formed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := wire.ReadXML(tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := wire.Text(root); got != tt.wantText {
				t.Errorf("text %q, want %q", got, tt.wantText)
			}
		})
	}
}

func TestEncodeLatin9(t *testing.T) {
	tests := []struct {
		in      string
		want    []byte
		wantErr bool
	}{
		{"Straße", []byte("Stra\xdfe"), false},
		{"€ Š Œ Ÿ", []byte("\xa4 \xa6 \xbc \xbe"), false},
		{"¤", nil, true}, // ISO-8859-1 has it, ISO-8859-15 has € in its place
		{"Łódź", nil, true},
	}
	for _, tt := range tests {
		got, err := wire.EncodeLatin9(tt.in)
		if (err != nil) != tt.wantErr || !bytes.Equal(got, tt.want) {
			t.Errorf("EncodeLatin9(%q) = %x, %v; want %x (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "ISO-8859-15") {
			t.Errorf("EncodeLatin9(%q): error %q does not name the charset", tt.in, err)
		}
	}
}

// reread serialises doc and reads it back as a received message.
func reread(t *testing.T, doc *etree.Document) wire.Envelope {
	t.Helper()
	data, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	root, err := wire.ReadXML(data)
	if err != nil {
		t.Fatal(err)
	}
	env, err := wire.OpenEnvelope(root, "")
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestMessagesAndFaults(t *testing.T) {
	const ns = "urn:example:service"
	for _, version := range []string{wire.NSSOAP11, wire.NSSOAP12} {
		t.Run(version, func(t *testing.T) {
			doc, op := wire.NewMessage(version, ns, "Ping", wire.Namespace{Prefix: "x", URI: "urn:x"})
			op.CreateElement("x:Value").SetText("1")
			env := reread(t, doc)
			if env.Version != version || !wire.Is(env.Payload, ns, "Ping") || wire.Text(wire.Child(env.Payload, "urn:x", "Value")) != "1" {
				t.Errorf("read back %+v", env)
			}
			if _, ok := wire.ReadFault(env.Payload); ok {
				t.Error("a message read as a fault")
			}
			for _, sender := range []bool{true, false} {
				doc, _ := wire.NewFault(version, sender, "it failed")
				f, ok := wire.ReadFault(reread(t, doc).Payload)
				want := map[[2]bool]string{{true, true}: "soap:Client", {true, false}: "soap:Server", {false, true}: "soap:Sender", {false, false}: "soap:Receiver"}[[2]bool{version == wire.NSSOAP11, sender}]
				if !ok || f.Code != want || f.Reason != "it failed" {
					t.Errorf("sender %v: fault %+v, %v; want code %s", sender, f, ok, want)
				}
			}
		})
	}
}

func TestOpenEnvelopeRefuses(t *testing.T) {
	tests := []struct{ name, version, xml string }{
		{"another root", "", `<Ping/>`},
		{"an envelope without body", "", `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>`},
		{"an empty body", "", `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>`},
		{"a body in another namespace", "", `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><Body><Ping/></Body></s:Envelope>`},
		{"another SOAP version", wire.NSSOAP11, `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><Ping/></s:Body></s:Envelope>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := wire.ReadXML([]byte(tt.xml))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := wire.OpenEnvelope(root, tt.version); err == nil {
				t.Error("opened")
			}
		})
	}
}

func TestMTOM(t *testing.T) {
	envelope := []byte(`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><d xmlns:xop="http://www.w3.org/2004/08/xop/include"><xop:Include href="cid:doc%401"/></d></soap:Body></soap:Envelope>`)
	for _, action := range []string{"", "urn:ihe:iti:2007:RetrieveDocumentSet"} {
		m := wire.MTOM{RootID: "root@test", Action: action}
		body, ct, err := m.Pack(envelope, []wire.Part{{ID: "doc@1", MimeType: "application/pdf", Data: []byte("%PDF")}})
		if err != nil {
			t.Fatal(err)
		}
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "multipart/related" || params["type"] != "application/xop+xml" || strings.Contains(params["start-info"], "action") != (action != "") {
			t.Fatalf("Content-Type %q", ct)
		}
		root, attachments, err := wire.UnpackMTOM(body, params)
		if err != nil || !bytes.Equal(root, envelope) {
			t.Fatalf("root %q, %v", root, err)
		}
		doc, err := wire.ReadXML(root)
		if err != nil {
			t.Fatal(err)
		}
		data, found, err := wire.Content(doc.FindElement("Body/d"), attachments)
		if !found || err != nil || string(data) != "%PDF" {
			t.Errorf("content %q, %v, %v", data, found, err)
		}
	}
	if _, _, err := wire.UnpackMTOM([]byte("x"), map[string]string{}); err == nil {
		t.Error("unpacked a body without boundary")
	}
}

func TestContent(t *testing.T) {
	attachments := map[string][]byte{"a@b": []byte("A")}
	tests := []struct {
		name      string
		xml       string
		want      string
		wantFound bool
		wantErr   bool
	}{
		{"reads base64 text", "<d>\n QQ==\n</d>", "A", true, false},
		{"resolves an include", `<d><i:Include xmlns:i="http://www.w3.org/2004/08/xop/include" href="cid:a@b"/></d>`, "A", true, false},
		{"misses an unknown include", `<d><i:Include xmlns:i="http://www.w3.org/2004/08/xop/include" href="cid:x"/></d>`, "", false, false},
		{"misses an include without cid", `<d><i:Include xmlns:i="http://www.w3.org/2004/08/xop/include" href="a@b"/></d>`, "", false, false},
		{"refuses bad base64", "<d>!!</d>", "", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := wire.ReadXML([]byte(tt.xml))
			if err != nil {
				t.Fatal(err)
			}
			data, found, err := wire.Content(e, attachments)
			if string(data) != tt.want || found != tt.wantFound || (err != nil) != tt.wantErr {
				t.Errorf("Content = %q, %v, %v", data, found, err)
			}
		})
	}
	if _, found, _ := wire.Content(nil, attachments); found {
		t.Error("found content of a missing element")
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, content := range []string{"one", "two"} {
		if err := wire.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", info.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files; the temporary ones should be gone", len(entries))
	}
	if err := wire.WriteFile(filepath.Join(dir, "missing", "x"), nil, 0o600); err == nil {
		t.Error("wrote into a directory that does not exist")
	}
}
