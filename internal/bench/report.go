package bench

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Target is what a figure must satisfy: Value Op Limit, where Op is "<=" or
// ">=". Text says it for a reader ("≤ 5 ms").
type Target struct {
	Value float64 `json:"value"`
	Op    string  `json:"op"`
	Limit float64 `json:"limit"`
	Text  string  `json:"text"`
	Met   bool    `json:"met"`
}

// NewTarget compares value with limit under op and returns the verdict.
func NewTarget(value float64, op string, limit float64, text string) *Target {
	t := &Target{Value: value, Op: op, Limit: limit, Text: text}
	switch op {
	case "<=":
		t.Met = value <= limit
	case ">=":
		t.Met = value >= limit
	default:
		panic("bench: unknown target operator " + op)
	}
	return t
}

// Row is one line of the final table: a figure, the ceiling or baseline it
// is read against, and its target when it has one.
type Row struct {
	Scenario  string  `json:"scenario"`
	Figure    string  `json:"figure"`
	Value     string  `json:"value"`
	Reference string  `json:"reference,omitempty"`
	Target    *Target `json:"target,omitempty"`
}

// Verdict is "met", "MISSED" or "" (no target).
func (r Row) Verdict() string {
	switch {
	case r.Target == nil:
		return ""
	case r.Target.Met:
		return "met"
	}
	return "MISSED"
}

// Report is what one scenario measured: the JSON line's payload and the
// table's rows.
type Report struct {
	Scenario string `json:"scenario"`
	Quick    bool   `json:"quick"`
	// Took is the scenario's wall time, set-up included, in seconds.
	Took float64 `json:"took_s"`
	// Results holds the scenario's own measurements.
	Results any `json:"results"`
	// Figures are the rows it adds to the table.
	Figures []Row `json:"figures"`
	// Others is the CPU other processes on the machine used meanwhile.
	Others NoiseReport `json:"other_processes"`
	// Error is set when the scenario could not run to the end.
	Error string `json:"error,omitempty"`
}

// JSONLine is the report as one line of JSON, without a newline.
func (r Report) JSONLine() string {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Sprintf(`{"scenario":%q,"error":%q}`, r.Scenario, err.Error())
	}
	return string(b)
}

// Table renders rows as a Markdown table with aligned columns.
func Table(rows []Row) string {
	head := []string{"scenario", "figure", "value", "ceiling / baseline", "target", "met"}
	cells := [][]string{head}
	for _, r := range rows {
		target := ""
		if r.Target != nil {
			target = r.Target.Text
		}
		cells = append(cells, []string{r.Scenario, r.Figure, r.Value, r.Reference, target, r.Verdict()})
	}
	width := make([]int, len(head))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		b.WriteString("|")
		for i, c := range row {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)) + " |")
		}
		b.WriteString("\n")
	}
	line(cells[0])
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, row := range cells[1:] {
		line(row)
	}
	return b.String()
}

// Missed lists the rows whose target was not met.
func Missed(rows []Row) []Row {
	var out []Row
	for _, r := range rows {
		if r.Target != nil && !r.Target.Met {
			out = append(out, r)
		}
	}
	return out
}

// FmtDur prints a duration with three significant digits in a unit that
// suits it (µs, ms or s).
func FmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.3g µs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.3g ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3g s", d.Seconds())
}

// FmtRate prints a rate per second, rounded to a whole number.
func FmtRate(perSec float64) string { return fmt.Sprintf("%.0f/s", perSec) }
