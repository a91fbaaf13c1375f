package bench

import (
	"bufio"
	"regexp"
	"strconv"
	"strings"
)

// BenchLine is one result line of `go test -bench` output.
type BenchLine struct {
	// Name is the benchmark's name without its -GOMAXPROCS suffix, e.g.
	// "BenchmarkReaderMiss/redis".
	Name       string
	Iterations int64
	// Metrics maps a unit ("ns/op", "B/op", "allocs/op", "p99-µs") to its
	// value.
	Metrics map[string]float64
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// ParseBench reads the result lines of `go test -bench` output; other lines
// are skipped.
func ParseBench(out string) []BenchLine {
	var lines []BenchLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		bl := BenchLine{Name: procsSuffix.ReplaceAllString(f[0], ""), Iterations: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			bl.Metrics[f[i+1]] = v
		}
		lines = append(lines, bl)
	}
	return lines
}

// FindBench returns the line named name, and false when there is none.
func FindBench(lines []BenchLine, name string) (BenchLine, bool) {
	for _, l := range lines {
		if l.Name == name {
			return l, true
		}
	}
	return BenchLine{}, false
}
