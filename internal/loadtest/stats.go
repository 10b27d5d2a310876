package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Durations is a sample of latencies.
type Durations []time.Duration

// Quantile returns the q-quantile (nearest rank) of a sorted copy.
func (d Durations) Quantile(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Max returns the largest value.
func (d Durations) Max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Max(d)
}

// Result is one scenario's figures: an ordered list of named values.
type Result struct {
	Scenario string
	Rows     []Row
	Failures []string // assertions that did not hold (e.g. a background socket closed)
}

// Row is one figure.
type Row struct {
	Name  string
	Value any
	Unit  string
}

// key is the row's JSON name: lower-case words joined by "_", then the
// unit ("connects" "/s" → connects_per_s; "handshake p99" "ms" →
// handshake_p99_ms).
func (row Row) key() string {
	unit := strings.NewReplacer("/", "per_", "µ", "u").Replace(row.Unit)
	name := strings.ReplaceAll(row.Name, "→", " to ") + " " + unit
	var b strings.Builder
	sep := false
	for _, c := range strings.ToLower(name) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			if sep && b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(c)
			sep = false
			continue
		}
		sep = true
	}
	return b.String()
}

func (r *Result) add(name string, v any, unit string) { r.Rows = append(r.Rows, Row{name, v, unit}) }

func (r *Result) addLatency(prefix string, d Durations) {
	r.add(prefix+" p50", ms(d.Quantile(0.50)), "ms")
	r.add(prefix+" p90", ms(d.Quantile(0.90)), "ms")
	r.add(prefix+" p99", ms(d.Quantile(0.99)), "ms")
	r.add(prefix+" max", ms(d.Max()), "ms")
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// Print writes r as a human table, or as JSON.
func (r *Result) Print(w io.Writer, asJSON bool) error {
	if asJSON {
		m := map[string]any{"scenario": r.Scenario, "failures": r.Failures}
		figs := map[string]any{}
		for _, row := range r.Rows {
			figs[row.key()] = row.Value
		}
		m["figures"] = figs
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario %s\t\t\n", r.Scenario)
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%v\t%s\n", row.Name, row.Value, row.Unit)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAILED: %s\n", f)
	}
	return nil
}

// progress draws a one-line progress bar on w (stderr) for long runs.
type progress struct {
	w     io.Writer
	label string
	total int
	last  time.Time
}

func (p *progress) set(done int) {
	if p == nil || p.w == nil || p.total == 0 {
		return
	}
	now := time.Now()
	if done < p.total && now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last = now
	const width = 30
	filled := width * done / p.total
	fmt.Fprintf(p.w, "\r%-10s [%s%s] %d/%d", p.label, strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, p.total)
	if done >= p.total {
		fmt.Fprintln(p.w)
	}
}
