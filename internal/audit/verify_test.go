package audit_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/audit"
	"github.com/redclone/red/internal/vault"
)

// tampering is a database's owner changing the trail's rows behind red's back.
type tampering struct {
	t *testing.T
	b backend
}

func (x tampering) token(typ, id string) []byte {
	tok, err := x.b.barrier.IDToken(typ, id)
	if err != nil {
		x.t.Fatal(err)
	}
	return tok
}

func (x tampering) sealed(typ, id string) []byte {
	rows := x.b.query(`SELECT sealed FROM resources WHERE tenant = 'praxis' AND type = $1 AND id = $2`, typ, x.token(typ, id))
	if len(rows) != 1 {
		x.t.Fatalf("%s %s: %d rows", typ, id, len(rows))
	}
	return rows[0]
}

func (x tampering) setSealed(typ, id string, sealed []byte) {
	x.b.exec(`UPDATE resources SET sealed = $1 WHERE tenant = 'praxis' AND type = $2 AND id = $3`, sealed, typ, x.token(typ, id))
}

// flip changes one byte of a record's sealed bytes.
func (x tampering) flip(chain string, seq int) {
	s := x.sealed("red:audit", record(chain, seq))
	s[len(s)/2] ^= 1
	x.setSealed("red:audit", record(chain, seq), s)
}

// remove deletes every row of a record or head.
func (x tampering) remove(typ, id string) {
	for _, table := range []string{"resources", "heads", "tokens"} {
		x.b.exec(`DELETE FROM `+table+` WHERE tenant = 'praxis' AND type = $1 AND id = $2`, typ, x.token(typ, id))
	}
}

// swap exchanges the sealed bytes of two records.
func (x tampering) swap(chain string, a, b int) {
	sa, sb := x.sealed("red:audit", record(chain, a)), x.sealed("red:audit", record(chain, b))
	x.setSealed("red:audit", record(chain, a), sb)
	x.setSealed("red:audit", record(chain, b), sa)
}

// rollback makes the previous version of a chain's head its current one.
func (x tampering) rollback(chain string) {
	tok := x.token("red:audit-head", chain)
	v := x.b.query(`SELECT CAST(version AS TEXT) FROM heads WHERE tenant = 'praxis' AND type = 'red:audit-head' AND id = $1`, tok)
	n, _ := strconv.Atoi(string(v[0]))
	x.b.exec(`DELETE FROM resources WHERE tenant = 'praxis' AND type = 'red:audit-head' AND id = $1 AND version = $2`, tok, n)
	x.b.exec(`UPDATE heads SET version = $1 WHERE tenant = 'praxis' AND type = 'red:audit-head' AND id = $2`, n-1, tok)
}

func record(chain string, seq int) string { return chain + "/" + strconv.Itoa(seq) }

// TestVerifyNamesTheFirstBreak writes two sessions — the first with five records (its opening,
// three writes, its close), the second witnessing it — changes the store's rows, and verifies.
func TestVerifyNamesTheFirstBreak(t *testing.T) {
	type broken struct {
		chain int // 0: the first session's chain, 1: the second's
		seq   int64
		what  string
	}
	cases := []struct {
		name     string
		tamper   func(x tampering, first, second string)
		want     *broken
		unclosed string // the first chain's end, when it has no close record
	}{
		{name: "finds an intact trail intact", tamper: func(tampering, string, string) {}},
		{name: "names a record whose sealed bytes were altered", tamper: func(x tampering, first, _ string) { x.flip(first, 3) },
			want: &broken{0, 3, "does not open"}},
		{name: "names a deleted record", tamper: func(x tampering, first, _ string) { x.remove("red:audit", record(first, 3)) },
			want: &broken{0, 3, "missing"}},
		{name: "names two swapped records", tamper: func(x tampering, first, _ string) { x.swap(first, 2, 3) },
			want: &broken{0, 2, "does not open"}},
		{name: "names a record moved from another chain", tamper: func(x tampering, first, second string) {
			x.setSealed("red:audit", record(first, 2), x.sealed("red:audit", record(second, 1)))
		}, want: &broken{0, 2, "does not open"}},
		{name: "names a deleted last record", tamper: func(x tampering, first, _ string) { x.remove("red:audit", record(first, 5)) },
			want: &broken{0, 5, "missing"}},
		{name: "names an end cut off with its head rolled back, which a later session witnessed", tamper: func(x tampering, first, _ string) {
			x.remove("red:audit", record(first, 5))
			x.rollback(first)
		}, want: &broken{0, 5, "ends at record 4, but it had 5 records when the session of ben on ws-2 started"}},
		{name: "names a head rolled back over records", tamper: func(x tampering, first, _ string) { x.rollback(first) },
			want: &broken{0, 5, "the head was rolled back"}},
		{name: "names a removed head", tamper: func(x tampering, first, _ string) { x.remove("red:audit-head", first) },
			want: &broken{0, 5, "head is missing"}},
		{name: "names a chain removed as a whole", tamper: func(x tampering, first, _ string) {
			for seq := 1; seq <= 5; seq++ {
				x.remove("red:audit", record(first, seq))
			}
			x.remove("red:audit-head", first)
		}, want: &broken{0, 1, "the whole chain is missing: it had 5 records when the session of ben on ws-2 started"}},
		{name: "names a record of the witness altered", tamper: func(x tampering, _, second string) { x.flip(second, 1) },
			want: &broken{1, 1, "does not open"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			onBoth(t, func(t *testing.T, b backend) {
				ctx := acting("anna", "ws-1")
				one := start(t, b.barrier, "anna", "ws-1")
				r := service(one, b.barrier)
				for range 3 {
					post(t, ctx, r, "patients.xml")
				}
				closeTrail(t, one)
				two := start(t, b.barrier, "ben", "ws-2")
				closeTrail(t, two)
				chains := []string{one.Session() + "-1", two.Session() + "-1"}
				c.tamper(tampering{t, b}, chains[0], chains[1])

				v := start(t, b.barrier, "anna", "ws-1")
				defer closeTrail(t, v)
				rep, err := v.Verify(acting("anna", "ws-1", access.Admin))
				if err != nil {
					t.Fatal(err)
				}
				first := rep.First()
				switch {
				case c.want == nil && first != nil:
					t.Fatalf("a break in an intact trail: %s", first)
				case c.want == nil:
					if len(rep.Chains) != 3 || rep.Chains[0].Records != 5 || rep.Chains[0].Closed != "stopped" || !rep.Chains[2].Running {
						t.Errorf("the report: %+v", rep.Chains)
					}
				case first == nil:
					t.Fatalf("no break found; chains: %+v", rep.Chains)
				case first.Chain != chains[c.want.chain] || first.Seq != c.want.seq || !strings.Contains(first.What, c.want.what):
					t.Fatalf("first break: %s\nwant chain %s, record %d: …%s…", first, chains[c.want.chain], c.want.seq, c.want.what)
				}
			})
		})
	}
}

// TestVerifyTellsAnEndWithoutCloseFromTampering leaves a session without its close, as a
// process killed with SIGKILL does, and cuts the end off a chain no later session witnessed:
// both read as chains that ended without close — which is the limit of what the database alone
// can tell.
func TestVerifyTellsAnEndWithoutCloseFromTampering(t *testing.T) {
	onBoth(t, func(t *testing.T, b backend) {
		ctx := acting("anna", "ws-1")
		killed := start(t, b.barrier, "anna", "ws-1")
		post(t, ctx, service(killed, b.barrier), "patients.xml")
		// no Close: the process ended here

		v := start(t, b.barrier, "anna", "ws-1")
		rep, err := v.Verify(acting("anna", "ws-1", access.Admin))
		if err != nil {
			t.Fatal(err)
		}
		if first := rep.First(); first != nil {
			t.Fatalf("a killed session reads as tampering: %s", first)
		}
		if got := rep.Chains[0].Unclosed(); !strings.HasPrefix(got, "chain ended without close after record 2, at time ") {
			t.Errorf("the killed session's chain: %q", got)
		}
		closeTrail(t, v)

		// the verifying session is now the newest: its end rolled back is not found
		x := tampering{t, b}
		chain := v.Session() + "-1"
		last := 1
		for len(x.b.query(`SELECT sealed FROM resources WHERE tenant = 'praxis' AND type = 'red:audit' AND id = $1`, x.token("red:audit", record(chain, last+1)))) == 1 {
			last++
		}
		x.remove("red:audit", record(chain, last))
		x.rollback(chain)
		again := start(t, b.barrier, "anna", "ws-1")
		defer closeTrail(t, again)
		rep, err = again.Verify(acting("anna", "ws-1", access.Admin))
		if err != nil {
			t.Fatal(err)
		}
		if first := rep.First(); first != nil {
			t.Fatalf("found %s, which the database alone cannot tell", first)
		}
		if got := rep.Chains[1].Unclosed(); !strings.Contains(got, "without close after record "+strconv.Itoa(last-1)) {
			t.Errorf("the cut chain: %q", got)
		}
	})
}

// TestConcurrentWritersKeepTheirChains writes from many goroutines at once — each commit takes a
// chain of its own while others are in use — and from two sessions (workstations) sharing the
// store, and finds every event and no break.
func TestConcurrentWritersKeepTheirChains(t *testing.T) {
	onBoth(t, func(t *testing.T, b backend) {
		const writers, writes = 6, 5
		var wg sync.WaitGroup
		var sessions []*audit.Trail
		for _, ws := range []string{"ws-1", "ws-2"} {
			tr := start(t, b.barrier, "anna", ws)
			sessions = append(sessions, tr)
			store := tr.Wrap(b.barrier)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := acting("anna", ws)
					for i := range writes {
						id := ws + "-" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
						if err := store.Commit(ctx, []vault.Write{{Type: "red:test", ID: id, Body: []byte("{}")}}); err != nil {
							t.Error(err)
						}
						tr.Record(audit.Event{Action: audit.Read, Type: "red:test", Outcome: audit.Success})
					}
				}()
			}
		}
		wg.Wait()
		for _, tr := range sessions {
			closeTrail(t, tr)
		}
		v := start(t, b.barrier, "anna", "ws-1")
		defer closeTrail(t, v)
		rep, err := v.Verify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if first := rep.First(); first != nil {
			t.Fatal(first)
		}
		// per session: its login, the writes, the reads, its logout; and the verifier's login
		if want := 2*(2+2*writers*writes) + 1; rep.Events != want {
			t.Errorf("%d events in %d records of %d chains, want %d", rep.Events, rep.Records, len(rep.Chains), want)
		}
		t.Logf("%d events in %d records of %d chains", rep.Events, rep.Records, len(rep.Chains))
	})
}
