package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Wrk drives phases with wrk (https://github.com/wg/wrk), a C client that takes little of the
// processors it shares with red, as the baseline was measured: wrk on loopback with
// keep-alive connections, a Lua script of red's (written into Dir) making the requests.
type Wrk struct {
	Bin string // the wrk executable
	Dir string // where the phases' scripts are written
}

// Op is what a phase's requests do.
type Op int

const (
	OpRead   Op = iota // GET {tenant}/Patient/{id} of the seeded patients
	OpSearch           // GET {tenant}/Patient?identifier=…kvid-10|{KVNR} of the seeded patients
	OpCreate           // POST {tenant}/Bundle, a 1-patient Patientenakte of a new patient each
)

// kvnrSystem is the identifier system the searches name, escaped for a query with its bar.
var kvnrSystem = url.QueryEscape("http://fhir.de/sid/gkv/kvid-10|")

// Script is a wrk phase's Lua script: init() prepares the requests, request() hands them out,
// done() prints one machine-readable line (see parseWrk). It defines no response(): wrk would
// then parse every answer's headers and body into Lua; its own count of answers with a status
// from 400 stands for the non-2xx ones (red answers these requests 200, 201 or an error), and
// before the phases each kind of request is sent once from Go, which checks for a 2xx.
type Script struct {
	Op       Op
	Prefix   string // the tenant's path, "/load"
	Data     *Data
	Patients int // seeded: patients 0 to Patients-1
	Threads  int // wrk's threads; each makes its own share of the numbers
	// First is the first new patient a create phase makes: thread t makes First+t,
	// First+t+Threads, …; done() names the highest number made.
	First int
}

// templates is the number of patients whose names and clinical details the created bundles
// take in turn (their ids, KVNRs, MRNs and e-mail addresses are each bundle's own).
const templates = 16

// Lua renders the script. Reads and searches walk the seeded patients in a fixed stride that
// visits each once per round, every thread from its own starting point; the requests are
// formatted once in init(). Creates render the bundle of patient n from one of the templates,
// n's ids and a KVNR computed as KVNR(n) computes it.
func (s Script) Lua() string {
	var b strings.Builder
	b.WriteString("-- wrk script written by red's tools/redload (internal/loadgen) for one phase.\n")
	fmt.Fprintf(&b, "local op, prefix, patients, threads, first, stride = %q, %q, %d, %d, %d, %d\n",
		[...]string{"read", "search", "create"}[s.Op], s.Prefix, s.Patients, s.Threads, s.First, stride(s.Patients))
	switch s.Op {
	case OpSearch:
		// patient i's KVNR at 10*i+1; every KVNR has 10 characters
		var kv strings.Builder
		for i := range s.Patients {
			kv.WriteString(KVNR(i))
		}
		fmt.Fprintf(&b, "local kvnrsystem = %q\nlocal kvnrs = %s\n", kvnrSystem, luaString(kv.String()))
	case OpCreate:
		b.WriteString("local templates = {\n")
		for j := range templates {
			b.WriteString("  {")
			for k, part := range s.Data.template(j) {
				if k%2 == 1 {
					b.WriteString(part + ", ") // a slot's number
				} else {
					b.WriteString(luaString(part) + ", ")
				}
			}
			b.WriteString("},\n")
		}
		b.WriteString("}\n")
	}
	b.WriteString(luaBody)
	return b.String()
}

const luaBody = `
local all = {}
function setup(thread)
  thread:set("tid", #all)
  all[#all + 1] = thread
end

n = -1
local reqs, k, headers = {}, 0, {["Content-Type"] = "application/fhir+xml"}

function init(args)
  if op == "create" then return end
  for i = 0, patients - 1 do
    local path
    if op == "read" then
      path = prefix .. "/Patient/P" .. (100000 + i)
    else
      path = prefix .. "/Patient?identifier=" .. kvnrsystem .. kvnrs:sub(10 * i + 1, 10 * i + 10)
    end
    reqs[i] = wrk.format("GET", path)
  end
  k = math.floor(tid * patients / threads)
end

-- kvnr is Go's KVNR(n): a letter, eight digits, the check digit.
local function kvnr(n)
  local letter = (n * 7) % 26
  local body = string.char(65 + letter) .. string.format("%08d", (n * 7919 + 12345678) % 100000000)
  local d = {math.floor((letter + 1) / 10), (letter + 1) % 10}
  for j = 2, 9 do d[#d + 1] = body:byte(j) - 48 end
  local sum = 0
  for j = 1, 10 do
    local p = d[j] * (2 - j % 2)
    sum = sum + math.floor(p / 10) + p % 10
  end
  return body .. (sum % 10)
end

function request()
  if op ~= "create" then
    local r = reqs[(k * stride) % patients]
    k = k + 1
    return r
  end
  n = first + tid + k * threads
  k = k + 1
  local slots = {string.format("%d", 100000 + n), string.format("%d", 4711 + n), string.format("%d", n), kvnr(n)}
  local t, parts = templates[n % #templates + 1], {}
  for j = 1, #t do
    local p = t[j]
    if type(p) == "number" then p = slots[p] end
    parts[j] = p
  end
  return wrk.format("POST", prefix .. "/Bundle", headers, table.concat(parts))
end

function done(summary, latency)
  local last = first - 1
  for _, t in ipairs(all) do last = math.max(last, t:get("n")) end
  local e = summary.errors
  io.write(string.format("redload-wrk requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d socket_errors=%d last=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout, last))
end
`

// stride is a step through 0..n-1 that visits every number once per round (coprime with n) and
// jumps far (about 0.618 n) between neighbours.
func stride(n int) int {
	s := max(n*618/1000, 1)
	for gcd(s, n) != 1 {
		s++
	}
	return s
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// luaString is s as a Lua long string, of a level whose closing bracket s does not contain. Lua
// drops a newline right after the opening bracket, so one is put there.
func luaString(s string) string {
	eq := ""
	for strings.Contains(s, "]"+eq+"]") {
		eq += "="
	}
	return "[" + eq + "[\n" + s + "]" + eq + "]"
}

// template is the create bundle of template patient j split at its unique parts: even indices
// are text, odd ones the number of the slot that goes there (1 the digits of the ids, 2 the MRN,
// 3 the number in the e-mail address, 4 the KVNR).
func (d *Data) template(j int) []string {
	b := d.bundle(patientRand(j), "\x001\x00", "\x002\x00", "\x003\x00", "\x004\x00")
	return strings.Split(string(b), "\x00")
}

// Run runs one phase of clients connections for d with script s against base (the tenant's URL)
// and reads what done() printed; last is the highest patient number a create phase made.
func (w Wrk) Run(ctx context.Context, base string, s Script, clients int, d time.Duration) (r Result, last int, err error) {
	f, err := os.CreateTemp(w.Dir, "phase-*.lua")
	if err != nil {
		return r, 0, err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(s.Lua())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return r, 0, err
	}
	secs := strconv.FormatFloat(max(d.Seconds(), 1), 'f', 0, 64) + "s"
	cmd := exec.CommandContext(ctx, w.Bin, "--threads", strconv.Itoa(s.Threads), "--connections", strconv.Itoa(clients),
		"--duration", secs, "--timeout", "10s", "--latency", "--script", f.Name(), base)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return r, 0, fmt.Errorf("%s: %v\n%s%s", filepath.Base(w.Bin), err, out.String(), stderr.String())
	}
	return parseWrk(out.String())
}

// parseWrk reads the line done() prints from wrk's output.
func parseWrk(out string) (r Result, last int, err error) {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "redload-wrk ")
		if !ok {
			continue
		}
		v := map[string]int64{}
		for _, kv := range strings.Fields(rest) {
			k, s, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return r, 0, fmt.Errorf("wrk's line %q: %s: %v", line, k, err)
			}
			v[k] = n
		}
		for _, k := range []string{"requests", "duration_us", "p50_us", "p99_us", "status_errors", "socket_errors", "last"} {
			if _, ok := v[k]; !ok {
				return r, 0, fmt.Errorf("wrk's line %q lacks %s", line, k)
			}
		}
		r = Result{Requests: uint64(v["requests"]), Errors: uint64(v["status_errors"] + v["socket_errors"]),
			Elapsed: time.Duration(v["duration_us"]) * time.Microsecond,
			P50:     time.Duration(v["p50_us"]) * time.Microsecond, P99: time.Duration(v["p99_us"]) * time.Microsecond}
		if r.Errors > 0 {
			r.FirstErr = fmt.Sprintf("%d answers with a status from 400, %d socket errors (connect, read, write, timeout)", v["status_errors"], v["socket_errors"])
		}
		return r, int(v["last"]), nil
	}
	return r, 0, fmt.Errorf("no redload-wrk line in wrk's output:\n%s", out)
}
