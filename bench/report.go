package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// printTable writes the machine, the ceilings and one row per result, then
// notes on the rows that need them.
func printTable(w io.Writer, report *Report) {
	m := report.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %s, %.1f GiB memory, %s %s/%s\n",
		m.CPUs, orDash(m.CPUModel), float64(m.MemoryBytes)/(1<<30), m.GoVersion, m.OS, m.Arch)
	if report.DatapusherVersion != "" {
		fmt.Fprintf(w, "server: %s\n", report.DatapusherVersion)
	}
	if report.Target != "" {
		fmt.Fprintf(w, "server: %s, running already with its own command and settings, "+
			"so the ingest scenario may deliver and the isolation scenario uses its delivery timeout\n", report.Target)
	}
	if c := report.Ceilings; c != nil {
		fmt.Fprintf(w, "ceilings: receiver %.0f req/s (p99 %s ms), bare 202 handler %.0f req/s (p99 %s ms)\n",
			c.ReceiverPerSecond, formatMs(c.ReceiverLatency.P99Ms), c.BarePerSecond, formatMs(c.BareLatency.P99Ms))
	}
	fmt.Fprintln(w)

	if len(report.Results) > 0 {
		writeRows(w, report.Results, report.Ceilings)
	}
	if len(report.Sweep) > 0 {
		fmt.Fprintln(w, "\nlatency sweep (steady scenario at each offered rate):")
		writeRows(w, report.Sweep, report.Ceilings)
	}
}

// writeRows writes a table of results with notes below it.
func writeRows(w io.Writer, results []ScenarioResult, ceilings *Ceilings) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tstore\toffered/s\taccepted/s\tdelivered/s\tdrain s\t"+
		"e2e p50\tp95\tp99\tmax ms\tingest p50\tp95\tp99 ms\terrors\trss MiB\tcpu s\t"+
		"acc/bare\tdel/recv\t")
	var notes []string
	rateCaps := map[int]bool{}
	for _, r := range results {
		if r.AccountRateLimit > 0 && r.AccountRateLimit < requestedRateLimit {
			rateCaps[r.AccountRateLimit] = true
		}
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\tfailed\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\n", r.Scenario, r.Store)
			notes = append(notes, fmt.Sprintf("%s failed: %s", r.Label(), firstLine(r.Error)))
			continue
		}
		delivers := r.Command == "serve"
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Scenario, r.Store, formatRate(r.OfferedRate), r.AcceptedPerSecond,
			ifDelivers(delivers, fmt.Sprintf("%.0f", r.DeliveredPerSecond)),
			ifDelivers(delivers, formatDrain(r)),
			ifDelivers(delivers, formatMs(r.EndToEnd.P50Ms)), ifDelivers(delivers, formatMs(r.EndToEnd.P95Ms)),
			ifDelivers(delivers, formatMs(r.EndToEnd.P99Ms)), ifDelivers(delivers, formatMs(r.EndToEnd.MaxMs)),
			formatMs(r.Ingest.P50Ms), formatMs(r.Ingest.P95Ms), formatMs(r.Ingest.P99Ms),
			formatErrors(r.Errors), formatMiB(r.PeakRSSBytes), formatCPU(r.CPUSeconds),
			formatRatio(r.AcceptedPerSecond, ceilingOf(ceilings, false)),
			ifDelivers(delivers, formatRatio(r.DeliveredPerSecond, ceilingOf(ceilings, true))))
		notes = append(notes, resultNotes(r)...)
	}
	tw.Flush()
	for _, limit := range slices.Sorted(maps.Keys(rateCaps)) {
		notes = append(notes, fmt.Sprintf("the server capped the account rate_limit_per_second at %d, "+
			"so rows offering more can show http 429 errors", limit))
	}
	for _, note := range notes {
		fmt.Fprintln(w, "note:", note)
	}
}

// resultNotes returns the remarks a reader of one row needs.
func resultNotes(r ScenarioResult) []string {
	var notes []string
	if r.Interrupted {
		notes = append(notes, fmt.Sprintf("%s: interrupted after %.1fs of load; the row covers that part",
			r.Label(), r.LoadSeconds))
	}
	if r.HangingDestinations > 0 {
		notes = append(notes, fmt.Sprintf("%s: the e2e latency is of the %d healthy destinations only; "+
			"destinations that never respond: %d, requests to them: %d",
			r.Label(), r.Destinations, r.HangingDestinations, r.HangAttempts))
	}
	if r.Command == "serve" && !r.DrainComplete && !r.Interrupted {
		notes = append(notes, fmt.Sprintf("%s: %d of %d deliveries arrived before the drain timeout",
			r.Label(), r.DeliveredTotal, r.DeliveriesExpected))
	}
	if r.DroppedSlots > 0 {
		notes = append(notes, fmt.Sprintf("%s: the %d senders fell behind the offered rate, so %d send slots were "+
			"dropped; a higher -concurrency offers more unless the harness is short of CPU",
			r.Label(), r.Concurrency, r.DroppedSlots))
	}
	if r.InvalidBodies > 0 {
		notes = append(notes, fmt.Sprintf("%s: %d deliveries had no bench_sent_ns field", r.Label(), r.InvalidBodies))
	}
	if r.ServerErrorLogs > 0 {
		notes = append(notes, fmt.Sprintf("%s: the server logged %d errors", r.Label(), r.ServerErrorLogs))
	}
	return notes
}

func ceilingOf(c *Ceilings, receiver bool) float64 {
	switch {
	case c == nil:
		return 0
	case receiver:
		return c.ReceiverPerSecond
	}
	return c.BarePerSecond
}

func ifDelivers(delivers bool, s string) string {
	if !delivers {
		return "-"
	}
	return s
}

func formatRate(rate float64) string {
	if rate == 0 {
		return "max"
	}
	return fmt.Sprintf("%g", rate)
}

// formatMs writes a latency in milliseconds with three significant digits
// at most.
func formatMs(ms float64) string {
	switch {
	case ms == 0:
		return "0"
	case ms < 10:
		return fmt.Sprintf("%.2f", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f", ms)
	}
	return fmt.Sprintf("%.0f", ms)
}

func formatDrain(r ScenarioResult) string {
	if !r.DrainComplete {
		return fmt.Sprintf(">%.1f", r.DrainSeconds)
	}
	return fmt.Sprintf("%.1f", r.DrainSeconds)
}

func formatErrors(errs map[string]int64) string {
	if len(errs) == 0 {
		return "0"
	}
	var parts []string
	for _, kind := range slices.Sorted(maps.Keys(errs)) {
		parts = append(parts, fmt.Sprintf("%s:%d", kind, errs[kind]))
	}
	return strings.Join(parts, ",")
}

func formatMiB(bytes int64) string {
	if bytes == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(bytes)/(1<<20))
}

func formatCPU(seconds float64) string {
	if seconds == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", seconds)
}

func formatRatio(value, ceiling float64) string {
	if ceiling == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*value/ceiling)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
