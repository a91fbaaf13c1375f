package bench

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/webhook"
)

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median of 4 is the 2nd", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(seq(100)...), 0.99, 99 * time.Millisecond},
		{"p100 is the max", ms(1, 2, 3), 1, 3 * time.Millisecond},
		{"p0 is the min", ms(5, 6), 0, 5 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.in, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestSummarize(t *testing.T) {
	d := []time.Duration{4 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	s := Summarize(d)
	if s.N != 4 || s.P50 != 2*time.Millisecond || s.Max != 4*time.Millisecond || s.Mean != 2500*time.Microsecond {
		t.Fatalf("Summarize = %+v", s)
	}
	j := s.JSON()
	if j.P50MS != 2 || j.MaxMS != 4 || j.MeanMS != 2.5 {
		t.Fatalf("JSON = %+v", j)
	}
	if z := Summarize(nil); z.N != 0 || z.P99 != 0 {
		t.Fatalf("Summarize(nil) = %+v", z)
	}
}

func TestRatioAndCounts(t *testing.T) {
	if r := Ratio(7, 10); r != 0.7 {
		t.Errorf("Ratio(7, 10) = %v", r)
	}
	if r := Ratio(1, 0); r != 0 {
		t.Errorf("Ratio(1, 0) = %v, want 0", r)
	}
	maxN, mean, total := Counts([]string{"a", "b", "c", "d"}, map[string]int64{"a": 2, "b": 1, "x": 9})
	if maxN != 2 || mean != 0.75 || total != 3 {
		t.Errorf("Counts = %d %v %d; want 2 0.75 3 (absent keys count 0, others are ignored)", maxN, mean, total)
	}
}

func TestTargetsAndTable(t *testing.T) {
	ratio := Ratio(6900, 10000)
	rows := []Row{
		{Scenario: "intake", Figure: "throughput", Value: "6900/s", Reference: "ceiling 10000/s", Target: NewTarget(ratio, ">=", 0.7, "≥ 0.7 × ceiling")},
		{Scenario: "intake", Figure: "ack p99", Value: "4.2 ms", Target: NewTarget(4.2, "<=", 5, "≤ 5 ms")},
		{Scenario: "reader", Figure: "miss", Value: "50 µs"},
	}
	if rows[0].Target.Met || rows[0].Verdict() != "MISSED" {
		t.Errorf("0.69 ≥ 0.7 met: %+v", rows[0].Target)
	}
	if !rows[1].Target.Met || rows[1].Verdict() != "met" {
		t.Errorf("4.2 ≤ 5 not met: %+v", rows[1].Target)
	}
	if rows[2].Verdict() != "" {
		t.Errorf("a row without target has verdict %q", rows[2].Verdict())
	}
	if m := Missed(rows); len(m) != 1 || m[0].Figure != "throughput" {
		t.Errorf("Missed = %+v", m)
	}
	table := Table(rows)
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("table has %d lines, want header, rule and 3 rows:\n%s", len(lines), table)
	}
	width := len([]rune(lines[0]))
	for _, l := range lines {
		if len([]rune(l)) != width {
			t.Errorf("columns not aligned:\n%s", table)
			break
		}
	}
	if !strings.Contains(lines[2], "MISSED") || !strings.Contains(lines[3], "| met") {
		t.Errorf("verdicts missing:\n%s", table)
	}
	rep := Report{Scenario: "intake", Figures: rows[:1]}
	if l := rep.JSONLine(); strings.Contains(l, "\n") || !strings.Contains(l, `"scenario":"intake"`) || !strings.Contains(l, `"met":false`) {
		t.Errorf("JSONLine = %s", l)
	}
}

const benchOut = `goos: linux
goarch: amd64
pkg: github.com/prismcache/prismcache/cache
cpu: Intel(R) Xeon(R) Processor
BenchmarkReaderHit-2                    	29012434	        41.62 ns/op	       0 B/op	       0 allocs/op
BenchmarkReaderHitParallel-2            	17380471	        69.80 ns/op	       0 B/op	       0 allocs/op
BenchmarkReaderMiss/redis-2             	   19281	     62213 ns/op	    4312 B/op	      61 allocs/op
BenchmarkHGetAll/redis-2                	   30213	     39712 ns/op	    1104 B/op	      22 allocs/op
BenchmarkHGetAll/redis+parse-2          	   22734	     52710 ns/op	    3302 B/op	      48 allocs/op
BenchmarkInvalidation/redis-2           	    3541	    412345 ns/op	       191.0 p50-µs	       720.0 p99-µs
PASS
ok  	github.com/prismcache/prismcache/cache	12.3s
`

func TestParseBenchAndReaderRows(t *testing.T) {
	lines := ParseBench(benchOut)
	if len(lines) != 6 {
		t.Fatalf("parsed %d lines, want 6: %+v", len(lines), lines)
	}
	inv, ok := FindBench(lines, "BenchmarkInvalidation/redis")
	if !ok || inv.Iterations != 3541 || inv.Metrics["p99-µs"] != 720 || inv.Metrics["ns/op"] != 412345 {
		t.Fatalf("invalidation = %+v", inv)
	}
	rows := ReaderRows(lines)
	if len(rows) != 4 {
		t.Fatalf("rows = %+v", rows)
	}
	if !rows[0].Target.Met || rows[0].Reference != "HGETALL 39.7 µs" {
		t.Errorf("hit row = %+v", rows[0])
	}
	if rows[3].Value != "720 µs (191 µs)" || !rows[3].Target.Met {
		t.Errorf("invalidation row = %+v", rows[3])
	}
	allocating := ParseBench("BenchmarkReaderHit-2 100 20 ns/op 16 B/op 1 allocs/op\n")
	if r := ReaderRows(allocating); r[0].Target.Met {
		t.Errorf("a hit that allocates met the target: %+v", r[0])
	}
}

func TestParseProc(t *testing.T) {
	m, err := parseStatus("Name:\tprismcache\nVmPeak:\t 2000000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n")
	if err != nil || m.RSS != 40<<20 || m.Peak != 50<<20 {
		t.Fatalf("parseStatus = %+v, %v", m, err)
	}
	if _, err := parseStatus("Name:\tx\n"); err == nil {
		t.Error("parseStatus without VmRSS: no error")
	}
	// The command name may hold spaces and parentheses.
	stat := "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0"
	d, err := parseStat(stat)
	if err != nil || d != 3*time.Second {
		t.Fatalf("parseStat = %v, %v; want 3s (300 ticks)", d, err)
	}
}

func TestSignerRequestsVerify(t *testing.T) {
	sg := &Signer{Secret: []byte("s3cret")}
	a, b := sg.Stamp(), sg.Stamp()
	if !b.After(a) {
		t.Fatalf("stamps not increasing: %v then %v", a, b)
	}
	body := sg.InstanceEvent(webhook.InstanceDeployed, "SW5zdGFuY2U6MQ==", "Acme")
	ev, err := webhook.Parse("", body, time.Now())
	if err != nil || ev.Type != webhook.InstanceDeployed || ev.InstanceID != "SW5zdGFuY2U6MQ==" || ev.TimestampMissing {
		t.Fatalf("the daemon's parser reads %+v, %v from %s", ev, err, body)
	}
	if bytes.Equal(body, sg.InstanceEvent(webhook.InstanceDeployed, "SW5zdGFuY2U6MQ==", "Acme")) {
		t.Fatal("two bodies for the same event are identical: dedup would drop the second")
	}
	raw := sg.Request(nil, "example:80", webhook.InstanceDeployed, body)
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	BaselineHandler("s3cret").ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("baseline answered %d to a signed request: %s", rec.Code, rec.Body)
	}
	req, _ = http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	rec = httptest.NewRecorder()
	BaselineHandler("other").ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("baseline answered %d to a request signed with another secret", rec.Code)
	}
}
