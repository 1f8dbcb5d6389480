// Package loadgen measures red under load the way issue #12 tabulates it (tools/redload, make
// load): it renders the load's Patientenakte bundles (Data), starts red serve on loopback with a
// fresh tenant (StartRed), seeds it from Go, and runs fixed-duration phases of read by id,
// identifier search and create, driven by wrk through Lua scripts it writes (Wrk, Script) or by
// its own Go clients (Phase); Markdown tabulates the medians, percentiles, errors and red's peak
// resident set.
package loadgen
