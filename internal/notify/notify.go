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
// Criteria, decided by the search values records indexed it by; subscriptions with the same
// criteria share one test), a prescription's record against the events task-available and
// task-status, a bundle's deletion against bundle-deleted — and one outbox entry (type
// red:notification, sealed like every record) is added to the same Commit, holding the events
// and, for each, the subscriptions it is for. No change is stored without its notifications;
// none is stored for a change that failed; ten subscriptions cost one record, not ten.
//
// # Numbering
//
// Each subscription's notifications carry sequence numbers 1, 2, 3 … without gaps, and an entry
// is sent only once it is numbered. One record per tenant, the ledger (red:notify-ledger), holds
// the place of the last entry numbered, each subscription's cursor (the last number given, the
// last acknowledged, failures) and the lease: which workstation delivers, until when. Only the
// lease holder writes it, versioned (the barrier's optimistic check, no row locks): a
// workstation that lost the lease learns so at its next write. Numbering an entry rewrites it
// once, with its place and each of its subscriptions' numbers (found by them from then on, for
// $events and after a restart), together with the ledger. When the deliverer runs on this
// workstation and holds the ledger, a change's own commit does that — the change, its entry
// numbered, the entries still queued numbered before it, and the ledger, in one write; otherwise
// (another workstation delivers, the deliverer holds the ledger at that moment, a subscription
// is new) the entry waits in a queue for the deliverer's next round, and a later change's commit
// never overtakes it. A conflict on the ledger sends the change to the queue instead, so a
// change never fails for its notifications.
//
// # Delivering
//
// Deliverer runs inside red serve. A subscription's notifications are sent one after the other,
// each only after the one before was acknowledged (2xx), as HTTP POSTs of a notification Bundle
// (the subscriptions backport's shape, id-only or full-resource) with the headers webhook-id
// (derived from the entry, the event and the subscription: the same on every attempt),
// webhook-timestamp and webhook-signature (HMAC-SHA256 with the subscription's secret, which red
// makes and shows once). Subscriptions are served side by side. A failed attempt is retried with
// exponential backoff and jitter; after MaxFailures in a row the subscription is in error, with
// the reason, until a client sets it active again, and then the backlog follows in order.
// Acknowledgements go into the ledger with its next write (a change's commit, or the next quiet
// round); failures are written at once.
//
// Several workstations may share one PostgreSQL database: each runs a deliverer, only the lease
// holder numbers and sends, so each notification goes out once; the others' changes wait in the
// queue until its next round. A deliverer killed between a POST and the next write of the ledger
// leaves the notification numbered but not acknowledged: when its lease ends, whoever takes the
// lease sends it again with the same webhook-id and sequence number — at least once, and a
// repeat is recognisable.
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
