package records_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
)

// Ids . and .. cannot be addressed in a URL (/Patient/.. is /), so they are refused wherever ids
// come in; other ids with dots stay valid.
func TestDotIDs(t *testing.T) {
	withID := func(id string) string {
		return strings.Replace(patient("x"), `<id value="x"/>`, `<id value="`+id+`"/>`, 1)
	}
	fromURL := func(id string) string { // a resource without id, named by its request
		e := strings.Replace(patient("x"), `<id value="x"/>`, "", 1)
		return strings.Replace(e, "</resource>", `</resource><request><method value="PUT"/><url value="Patient/`+id+`"/></request>`, 1)
	}
	deleting := func(id string) string {
		return `<entry><request><method value="DELETE"/><url value="Patient/` + id + `"/></request></entry>`
	}
	refused := []struct {
		name, body, expression string
	}{
		{"refuses the resource id .", string(bundle("", "history", withID("."))), "Bundle.entry[0].resource.id"},
		{"refuses the resource id ..", string(bundle("", "history", withID(".."))), "Bundle.entry[0].resource.id"},
		{"refuses .. as the id of a batch entry", string(bundle("", "batch", withID(".."))), "Bundle.entry[0].resource.id"},
		{"refuses .. named by the request of an entry without id", string(bundle("", "transaction", fromURL(".."))), "Bundle.entry[0].resource.id"},
		{"refuses a DELETE of ..", string(bundle("", "transaction", deleting(".."))), "Bundle.entry[0].request.url"},
		{"refuses a DELETE of .", string(bundle("", "transaction", deleting("."))), "Bundle.entry[0].request.url"},
		{"refuses the bundle id .", string(bundle(".", "history", patient("d1"))), "Bundle.id"},
		{"refuses the bundle id ..", string(bundle("..", "batch", patient("d2"))), "Bundle.id"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			s := newService(t)
			resp, err := postRaw(t, s, []byte(c.body))
			if err == nil && strings.Contains(c.body, `value="batch"`) {
				if !strings.Contains(resp, "400 Bad Request") || !strings.Contains(resp, `<expression value="`+c.expression+`"/>`) {
					t.Fatalf("batch answer lacks the refusal at %s:\n%s", c.expression, resp)
				}
				return
			}
			is, status := fhir.Explain(err)
			found := false
			for _, i := range is {
				found = found || i.Expression == c.expression && i.Code == fhir.CodeValue && strings.Contains(i.Diagnostics, "not . or ..")
			}
			if status != 400 || !found {
				t.Fatalf("got %d %+v, want a value issue at %s", status, is, c.expression)
			}
			if set := search(t, s, "Patient", "page=1"); set.Total != 0 {
				t.Errorf("%d patients stored", set.Total)
			}
		})
	}
	t.Run("accepts ids with dots among other characters", func(t *testing.T) {
		s := newService(t)
		if _, err := postRaw(t, s, bundle("b.1", "history", withID("p.1"), patient("..p"))); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"p.1", "..p"} {
			if _, err := s.Read(context.Background(), "Patient", id); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}
	})
	t.Run("refuses a reference to Patient/.. for naming nothing", func(t *testing.T) {
		s := newService(t)
		cov := strings.ReplaceAll(akteEntry(t, "Coverage", "V1101"), "Patient/P1001", "Patient/..")
		_, err := postRaw(t, s, bundle("", "history", cov))
		if err == nil || !strings.Contains(err.Error(), "beneficiary.reference") {
			t.Errorf("err = %v", err)
		}
	})
}
