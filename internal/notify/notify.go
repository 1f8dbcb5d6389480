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
// task-status, a bundle's deletion against bundle-deleted — and one outbox entry (red:outbox,
// sealed like every record, found by nothing but its id) is added to the same Commit: the
// events as references to what changed (the payloads are made when they are sent), each with
// the subscriptions it is for. No change is stored without its notifications; none is stored
// for a change that failed; ten subscriptions cost one small record, not ten. The commit reads
// one head, the version of the subscriptions (they are cached until one changes, on any
// workstation), and for the task events the prescription record's previous version.
//
// # Numbering
//
// The deliverer numbers what the commits queued: each round it reads the outbox entries (every
// live one is unnumbered), orders them, gives each subscription's notifications its next
// sequence numbers 1, 2, 3 … without gaps, and writes them as the next segment of the tenant's
// log (red:notify-log, ids 1, 2, 3 …; each segment also holds every subscription's last number so
// far, so that a number is found by a binary search over the segments) while it forgets the
// entries — one commit per round, however many changes it numbers, and while changes are being
// committed here it goes with the next of them (the outbox carries it: one transaction and one
// flush to disk for both; when the transaction conflicts, the change is committed again alone),
// so that under load the deliverer adds no transaction of its own. Nothing is sent before it is
// numbered: a notification sent again (after a crash, by another workstation) has the same
// number and webhook-id.
//
// One record per tenant, the ledger (red:notify-ledger), holds the lease (which workstation
// delivers, until when), the first segment kept and each subscription's cursor (the last number
// acknowledged, failures). Only the lease holder writes it, versioned (the barrier's optimistic
// check, no row locks), keeping no earlier versions; a workstation that lost the lease learns so
// at its next round. The segments need no ledger write: a segment id is created once (a second
// numbering of the same entries conflicts on the segment or on the entries it forgets).
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
// Acknowledgements wait for the ledger's next write, at most Delivery.Acks (less when the
// deliveries are quiet); failures are written at once. Endpoints are loopback addresses, or the
// host names the admin allowed: those are resolved once per connection, the addresses checked
// and connected to exactly (DNS rebinding cannot redirect a delivery).
//
// A subscription follows the view of who saved it last (its audience, by user groups): the
// outbox entry's events are made per audience, of only what it sees, and a payload holds only
// the resources and patient identifiers it sees. The part of a payload that is the same for
// several subscriptions is written once per event, payload content, audience and view of who
// asks (the deliverer, or in $events the caller, who sees no more than the API shows them).
//
// Several workstations may share one PostgreSQL database: each runs a deliverer, only the lease
// holder numbers and sends, so each notification goes out once; the others' changes wait in the
// outbox until its next round. A deliverer killed between a POST and the next write of the
// ledger leaves the notification numbered but not acknowledged: when its lease ends, whoever
// takes the lease sends it again with the same webhook-id and sequence number — at least once,
// and a repeat is recognisable.
//
// # Retention
//
// Delivered notifications are kept Delivery.Keep (7 days) for $events, then pruned by the lease
// holder in the background, at most Delivery.Batch segments per commit, oldest first; a segment
// holding a notification not yet acknowledged by a subscription that still exists is kept, and
// so is everything after it. The ledger and the subscriptions' version record keep no history.
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
	ledgerType       = "red:notify-ledger" // the deliveries' state: the lease, the log's extent, every subscription's cursor
	ledgerID         = "all"
	entryType        = "red:outbox"        // one commit's notifications, until numbered
	segmentType      = "red:notify-log"    // numbered notifications: a segment of the tenant's log, ids 1, 2, 3 …
	generationType   = "red:subscriptions" // one record whose version changes with every subscription change
	generationID     = "all"
	// outbox entries as red wrote them before the log (numbered in place, found by tokens): the
	// pruner removes them
	formerEntryType = "red:notification"
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

// findAll reads the records q finds, each decoded.
func findAll[T any](ctx context.Context, store Store, q vault.Query, decode func(vault.Resource) (T, error)) ([]T, error) {
	page, err := store.Find(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(page.Resources))
	for _, r := range page.Resources {
		v, err := decode(r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
