// Package fachdienst is the client of the E-Rezept-Fachdienst: it creates, activates, accepts,
// rejects, dispenses, closes and aborts prescription Tasks and reads Tasks, Communications and
// MedicationDispenses, speaking FHIR XML over HTTP, and it holds the types and constants that
// the client and the simulator in fachdienstsim share.
//
// The real Fachdienst is reached through a VAU tunnel with an IDP access token; this client talks
// to the inner FHIR API directly and carries the two token claims the Fachdienst decides by, the
// caller's profession OID and its Telematik-ID (or KVNR), in the headers [HeaderProfessionOID] and
// [HeaderIDNumber] (see [Identity]).
package fachdienst
