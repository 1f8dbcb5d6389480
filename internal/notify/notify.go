// Package notify tells practice and pharmacy systems of changes without polling: FHIR R4
// Subscriptions (channel rest-hook) whose notifications are written into a sealed outbox in the
// same commit as the change that caused them, and delivered by webhook, signed as Standard
// Webhooks sign them.
//
// # Writing
//
// Outbox wraps the vault's barrier that records, erp and pharmacy commit through (serve wires
// it; their code does not change): every Commit is looked at before it goes to the store, each
// write is tested against the tenant's subscriptions — a resource against a search (records'
// Criteria, decided by the search values records indexed it by), a prescription's record
// against the events task-available and task-status, a bundle's deletion against bundle-deleted —
// and a notification record (type red:notification, sealed like every record) is added to the
// same Commit for each subscription that matches. No change is stored without its notifications;
// none is stored for a change that failed.
//
// # Delivering
//
// Deliverer runs inside red serve. A subscription's notifications are sent one after the other,
// each only after the one before was acknowledged (2xx), as HTTP POSTs of a notification Bundle
// (the subscriptions backport's shape, id-only or full-resource) with the headers webhook-id,
// webhook-timestamp and webhook-signature (HMAC-SHA256 with the subscription's secret, which red
// makes and shows once). A failed attempt is retried with exponential backoff and jitter; after
// MaxFailures in a row the subscription is in error, with the reason, until a client sets it
// active again, and then the backlog follows in order.
//
// Several workstations may share one PostgreSQL database: each runs a deliverer, and each
// notification still goes out once. There is no row lock below the barrier; instead every
// subscription has one cursor record (red:subscription-cursor) whose version the barrier checks
// on every commit. A deliverer acts for a subscription only while it holds the cursor's lease:
// it takes or renews the lease with a versioned write (a conflict means another workstation
// changed the cursor first, and this one reads it again and stands back), and in that same commit
// numbers the new notifications — the sequence numbers a receiver sees, without gaps — and moves
// them from the subscription's queue to its numbered log. It then sends them in order; what was
// acknowledged is written to the cursor with the next round's commit (or at once after a
// failure). A second workstation therefore never sends what the holder sends, and a holder that
// lost its lease (it stalled longer than the lease) learns so at its next commit and stops. A
// deliverer killed between a POST and its next commit leaves the notification numbered but not
// acknowledged: when its lease ends, whoever takes the lease sends it again with the same
// webhook-id and sequence number — at least once, and a repeat is recognisable.
package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/redclone/red/internal/vault"
)

// The storage types of notify's sealed records: none is a FHIR type, so the API's generic reads
// and searches never reach them.
const (
	subscriptionType = "red:subscription"  // a Subscription and its secret
	ledgerType       = "red:notify-ledger" // the deliveries' state: the lease, the log, every subscription's cursor
	ledgerID         = "all"
	entryType        = "red:notification"  // one commit's notifications in the outbox
	generationType   = "red:subscriptions" // one record whose version changes with every subscription change
	generationID     = "all"
)

// Index names of outbox entries.
const (
	queueIndex = "notify.queue" // value queued: carried until the entry is numbered
	queued     = "queued"
	seqIndex   = "notify.seq" // value: subscription key "|" sequence number, once numbered
)

// Store is what notify needs of the vault's barrier.
type Store interface {
	Commit(ctx context.Context, writes []vault.Write) error
	Current(ctx context.Context, typ, id string) (vault.Resource, error)
	Version(ctx context.Context, typ, id string, version int64) (vault.Resource, error)
	Heads(ctx context.Context, refs []vault.Ref) ([]vault.Resource, error)
	Find(ctx context.Context, q vault.Query) (vault.Page, error)
}

// newID makes a random id (32 hex digits).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
