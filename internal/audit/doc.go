// Package audit keeps the tenant's audit trail: who read, searched, wrote or deleted a person's
// data, ran a TI action on it, or logged in — when, from which workstation and API client, with
// what outcome — sealed like every record and chained so that whoever lacks the tenant's keys
// cannot remove, alter, insert or reorder what it says unseen.
//
// # What is recorded
//
// An Event names the user, workstation and API client (from the request's access.Principal),
// the time, the action (read, vread, search, create, update, delete, write, operation, login,
// logout, audit), the resource type, the resources by their blind id token (never their id),
// the patients concerned ("Patient/id" or "kvnr:KVNR", sealed) and the outcome: success, or the
// FHIR issue code and HTTP status of the failure. Trail.Records, Trail.Telematik and Trail.UI
// wrap what the API and the signing page call, and record every call; Trail.Wrap wraps the
// vault's barrier that records, erp and pharmacy commit through.
//
// # Where it is written
//
// A write's event goes into the very Commit that writes the change (Trail.Wrap adds it, as
// package notify adds its outbox entry; the two wrappers compose): no change is stored without
// its event. A write that fails is recorded with its outcome after the failure. Reads, searches
// and TI actions are recorded right after they are answered: their events wait in a bounded
// queue, and a background writer commits what has gathered in one record (group commit), so a
// read never waits for the database twice. The queue is flushed when the trail is closed (the
// server stops or locks); a process killed with SIGKILL loses at most the events still queued.
//
// # The chain
//
// Events are stored in records (storage type red:audit, sealed): the events of one commit. Each
// record belongs to a chain and carries its sequence number in it, the MAC of its predecessor
// and its own MAC — HMAC-SHA256 under the tenant's audit key, which only the vault holds
// (vault.Barrier.AuditMAC) — over its content. A chain is written by one process alone, so
// workstations sharing a database never contend for it: each process that audits (red serve,
// red demo, red import, red audit) opens a session with chains of its own, as many as it
// commits concurrently (lanes: one commit at a time per chain, so a workstation's concurrent
// writes are not serialised by the trail). Each chain has a head record (red:audit-head) that
// is rewritten, versioned, in every commit that adds to the chain: it names the last record and
// whether the chain was closed. A closed chain ends with a close record.
//
// A session's first record names, as its witness, the head of every chain the session could see
// that was not closed or was written to since the session before it started: a chain cut short
// after it was witnessed, or removed as a whole, is found by the witness; so is the tail of a
// chain whose head was rolled back. Verify reads every chain and names the first break of each:
// a record missing, altered (it does not open, or its MAC does not match), out of place, a head
// that disagrees, a witness that saw more. A chain that simply stops without its close record —
// its process was killed, crashed or still runs — is named as such, apart from the breaks.
//
// # Limits
//
// Whoever holds the tenant's keys (any logged-in user running a modified red) can write records
// the trail accepts; the chain defends against those with access to the database alone. Such a
// person can also roll the whole trail back to an earlier state — remove the newest records of
// every chain together with the newer versions of their heads and of the sessions that
// witnessed them — which nothing inside the database can tell; comparing with a head noted
// elsewhere can (red audit verify prints them). Events still queued when a process is killed
// are lost; a write's event never is.
package audit
