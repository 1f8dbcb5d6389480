package loadgen

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Median is the middle of xs (the mean of the two middle ones for an even count); 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medians are a phase's figures over its runs: the median rate, p50 and p99 (each on its own),
// and the errors of all runs together.
func (p PhaseReport) medians() (rate float64, p50, p99, cpu time.Duration, errs uint64) {
	var rates, p50s, p99s, cpus []float64
	for _, r := range p.Runs {
		rates = append(rates, r.Rate())
		p50s = append(p50s, float64(r.P50))
		p99s = append(p99s, float64(r.P99))
		cpus = append(cpus, float64(r.CPUPerRequest()))
		errs += r.Errors
	}
	return Median(rates), time.Duration(Median(p50s)), time.Duration(Median(p99s)), time.Duration(Median(cpus)), errs
}

// Markdown is the reports side by side as the issue tabulates them: a row per operation and
// number of clients, a column per store (PostgreSQL first), then the seed and the peak resident
// sets, and how the figures were taken: at started on machine (Machine()).
func Markdown(c Config, reps []StoreReport, started time.Time, machine string) string {
	reps = slices.Clone(reps)
	slices.SortStableFunc(reps, func(a, b StoreReport) int { return strings.Compare(a.Store, b.Store) }) // postgres, sqlite
	var sb strings.Builder
	sb.WriteString("| operation | clients |")
	rule := "|---|---|"
	for _, r := range reps {
		sb.WriteString(" red-" + storeName(r.Store) + " |")
		rule += "---|"
	}
	sb.WriteString("\n" + rule + "\n")
	if len(reps) > 0 {
		for i, p := range reps[0].Phases {
			fmt.Fprintf(&sb, "| %s | %d |", strings.ReplaceAll(p.Operation, "|", `\|`), p.Clients)
			for _, r := range reps {
				if i >= len(r.Phases) {
					sb.WriteString(" — |")
					continue
				}
				rate, p50, p99, cpu, errs := r.Phases[i].medians()
				fmt.Fprintf(&sb, " %s/s · p50 %s · p99 %s · %s · %s · CPU %s/req |", thousands(rate), ms(p50), ms(p99), errorCount(errs), MB(r.Phases[i].PeakRSS), us(cpu))
			}
			sb.WriteString("\n")
		}
	}
	fmt.Fprintf(&sb, "| seed: %s patients (4 resources each) | %d |", thousands(float64(c.Patients)), c.SeedClients)
	for _, r := range reps {
		s := r.Seed
		fmt.Fprintf(&sb, " %s res/s · p50 %s · p99 %s · %s |", thousands(4*s.Rate()), ms(s.P50), ms(s.P99), errorCount(s.Errors))
	}
	sb.WriteString("\n| peak RSS: start (unlock) · seed · phases | |")
	for _, r := range reps {
		fmt.Fprintf(&sb, " %s · %s · %s |", MB(r.StartRSS), MB(r.SeedRSS), MB(r.PhasesRSS))
	}
	driver := "redload's Go clients (a latency histogram as wrk's)"
	if c.Wrk != nil {
		driver = "wrk (threads: the clients, at most one per CPU)"
	}
	fmt.Fprintf(&sb, "\n\nEach phase: %s of keep-alive clients on loopback driven by %s, %d runs, medians of requests/s, p50 and p99 "+
		"(each on its own); errors are the answers other than 2xx (wrk: with a status from 400) and the socket errors of all runs; the MB are red's peak RSS (VmHWM) during the phase's runs; "+
		"CPU/req is red's own processor time (user and system) per request, the median of the runs, which depends less than the rate on what else the machine runs. ",
		c.Duration, driver, c.Repeat)
	fmt.Fprintf(&sb, "Measured %s on %s; load average (1 min)", started.Format("2006-01-02 15:04"), machine)
	for _, r := range reps {
		fmt.Fprintf(&sb, ", %s: %s at the start, %s at the end", storeName(r.Store), r.LoadAvg[0], r.LoadAvg[1])
	}
	sb.WriteString(".\n")
	for _, r := range reps {
		if r.RSSNote != "" {
			fmt.Fprintf(&sb, "\n%s: %s.\n", storeName(r.Store), r.RSSNote)
		}
	}
	return sb.String()
}

func storeName(store string) string {
	if store == "postgres" {
		return "PG"
	}
	return "SQLite"
}

func errorCount(n uint64) string {
	if n == 1 {
		return "1 error"
	}
	return strconv.FormatUint(n, 10) + " errors"
}

// thousands is x rounded, with commas between thousands (as the issue writes figures).
func thousands(x float64) string {
	s := strconv.FormatInt(int64(x+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// ms is d in milliseconds with two decimals (three below 1 ms).
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	if f < 1 {
		return strconv.FormatFloat(f, 'f', 3, 64) + " ms"
	}
	return strconv.FormatFloat(f, 'f', 2, 64) + " ms"
}

// us is d in whole microseconds ("?" when not measured).
func us(d time.Duration) string {
	if d <= 0 {
		return "? µs"
	}
	return strconv.FormatInt(d.Round(time.Microsecond).Microseconds(), 10) + " µs"
}

// MB is n bytes in MiB, rounded, for the report ("?" when unknown).
func MB(n int64) string {
	if n <= 0 {
		return "? MB"
	}
	return strconv.FormatInt((n+1<<19)>>20, 10) + " MB"
}

func firstErr(r Result) string {
	if r.FirstErr == "" {
		return ""
	}
	return "; the first: " + r.FirstErr
}

func slicesMax(xs []int) int {
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs)
}

// Machine names the processor count and Go version the figures are taken with.
func Machine() string {
	return fmt.Sprintf("%d CPUs, %s", runtime.NumCPU(), runtime.Version())
}
