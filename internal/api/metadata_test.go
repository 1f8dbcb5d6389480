package api_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/api"
	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/internal/notify"
)

// The CapabilityStatement states exactly what the server does: with notifications, the
// Subscription resource with its interactions, channel, topics and $events.
func TestCapabilityStatement(t *testing.T) {
	date := regexp.MustCompile(`<date value="\d{4}-\d{2}-\d{2}"/>`)
	for _, tc := range []struct {
		name, golden string
		subs         api.Subscriptions
	}{
		{"lists Subscription when notifications are served", "testdata/metadata.golden", &notify.Service{}},
		{"lists no Subscription without notifications", "testdata/metadata-without-notifications.golden", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer((&api.Server{Tenant: "praxis", TI: &stubTI{}, Tenants: noTenants{}, Limits: fhir.DefaultLimits,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test", Subscriptions: tc.subs}).Handler())
			t.Cleanup(srv.Close)
			status, _, body := get(t, srv, "GET", "/praxis/metadata")
			if status != 200 {
				t.Fatalf("status %d\n%s", status, body)
			}
			fixture.Golden(t, tc.golden, []byte(date.ReplaceAllString(body, `<date value="{date}"/>`)))
		})
	}
}
