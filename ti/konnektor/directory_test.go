package konnektor_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redclone/red/ti/konnektor"
)

// TestDirectoryPerClient: every client reads and keeps its own service directory.
func TestDirectoryPerClient(t *testing.T) {
	t.Run("two clients against two simulators get their own directories", func(t *testing.T) {
		worlds := []*world{start(t, worldOptions{}), start(t, worldOptions{})}
		for i, w := range worlds {
			dir, err := w.client.Services(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			v, ok := dir.Find(konnektor.ServiceEvent, "7.2")
			if !ok || !strings.HasPrefix(v.Endpoint, w.client.BaseURL+"/") {
				t.Errorf("client %d: EventService at %q, want one below %s", i, v.Endpoint, w.client.BaseURL)
			}
			if _, err := w.client.GetCards(ctxT(t), konnektor.Filter{}); err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		}
	})

	t.Run("a client keeps its directory, another one at the same address reads its own", func(t *testing.T) {
		var name atomic.Value
		name.Store("first")
		var reads atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reads.Add(1)
			fmt.Fprintf(w, `<ConnectorServices xmlns="%s"><ProductInformation xmlns="%s"><ProductMiscellaneous><ProductName>%s</ProductName></ProductMiscellaneous></ProductInformation></ConnectorServices>`,
				konnektor.NSServiceDirectory, konnektor.NSProductInformation, name.Load())
		}))
		defer srv.Close()
		productName := func(c *konnektor.Client) string {
			t.Helper()
			dir, err := c.Services(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			return dir.ProductName
		}
		first := &konnektor.Client{BaseURL: srv.URL, HTTP: srv.Client()}
		if got := productName(first); got != "first" {
			t.Fatalf("product %q", got)
		}
		name.Store("second")
		second := &konnektor.Client{BaseURL: srv.URL, HTTP: first.HTTP}
		tests := []struct {
			name   string
			client *konnektor.Client
			want   string
		}{
			{"the first client keeps what it read", first, "first"},
			{"a client made with For shares it", first.For(konnektor.Context{UserID: "u2"}), "first"},
			{"a new client reads the directory itself", second, "second"},
		}
		for _, tt := range tests {
			if got := productName(tt.client); got != tt.want {
				t.Errorf("%s: product %q, want %q", tt.name, got, tt.want)
			}
		}
		if n := reads.Load(); n != 2 {
			t.Errorf("connector.sds read %d times, want 2", n)
		}
	})

	t.Run("is safe for concurrent use", func(t *testing.T) {
		w := start(t, worldOptions{})
		c := &konnektor.Client{BaseURL: w.client.BaseURL, HTTP: w.client.HTTP, Context: w.client.Context}
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 16 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, err := c.Services(ctxT(t))
				errs <- err
			}()
			go func() {
				defer wg.Done()
				ctx := c.Context
				ctx.UserID = fmt.Sprintf("user%d", i)
				_, err := c.For(ctx).GetCards(ctxT(t), konnektor.Filter{})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
}
