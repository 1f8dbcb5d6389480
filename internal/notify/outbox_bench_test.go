package notify_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redclone/red/internal/notify"
	"github.com/redclone/red/internal/vault/vaulttest"
)

// BenchmarkOutbox posts 10-patient bundles through records and the outbox on SQLite with 0 and
// 10 subscriptions selecting every Patient, the deliverer not running: what the outbox adds to
// a change's own commit (the notification, decided and written in the same transaction).
// BenchmarkNotify (internal/cli) measures the whole, over HTTP and with the deliveries.
func BenchmarkOutbox(b *testing.B) {
	for _, subs := range []int{0, 10} {
		b.Run(fmt.Sprintf("subscriptions=%d", subs), func(b *testing.B) {
			bar, _ := vaulttest.Barrier(b)
			e := newEnv(b, bar, fast)
			for range subs {
				e.subscribe(b, "Patient", "http://127.0.0.1:9/hook", notify.IDOnly)
			}
			i := 0
			for b.Loop() {
				entries := make([]string, 10)
				for j := range entries {
					entries[j] = patient(fmt.Sprintf("b%d-%d", i, j), i*10+j, "Muster")
				}
				e.post(b, strings.Join(entries, ""))
				i++
			}
		})
	}
}
