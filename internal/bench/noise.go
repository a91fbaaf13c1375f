package bench

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// procInfo is one process's CPU time and parent.
type procInfo struct {
	cpu  time.Duration
	ppid int
	name string
}

// scanProcs reads every process's CPU time from /proc.
func scanProcs() map[int]procInfo {
	out := map[int]procInfo{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		cpu, err := parseStat(s)
		if err != nil {
			continue
		}
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		f := strings.Fields(s[close+1:])
		ppid, _ := strconv.Atoi(f[1])
		out[pid] = procInfo{cpu: cpu, ppid: ppid, name: s[open+1 : close]}
	}
	return out
}

// Noise measures the CPU that processes outside the harness's own tree
// (itself and its descendants: redis-server, the daemons, the baseline, go
// test) use while a scenario runs: on a shared machine, the share of the
// two cores the figures did not get.
type Noise struct {
	start map[int]procInfo
	t0    time.Time
}

// StartNoise takes the first sample.
func StartNoise() *Noise { return &Noise{start: scanProcs(), t0: time.Now()} }

// NoiseReport is what other processes used during a scenario.
type NoiseReport struct {
	// Cores is their CPU time over the wall time: 1.0 is one core busy.
	Cores float64 `json:"cores"`
	// Busiest names the heaviest of them, with their share of a core.
	Busiest []string `json:"busiest,omitempty"`
}

// Stop takes the second sample and returns the other processes' use.
func (n *Noise) Stop() NoiseReport {
	end := scanProcs()
	wall := time.Since(n.t0)
	self := os.Getpid()
	own := func(pid int) bool {
		for i := 0; i < 64 && pid > 1; i++ {
			if pid == self {
				return true
			}
			p, ok := end[pid]
			if !ok {
				return false
			}
			pid = p.ppid
		}
		return false
	}
	type use struct {
		name string
		cpu  time.Duration
	}
	var total time.Duration
	var uses []use
	for pid, p := range end {
		if own(pid) {
			continue
		}
		d := p.cpu - n.start[pid].cpu
		if s, ok := n.start[pid]; ok && s.name != p.name {
			d = p.cpu
		}
		if d <= 0 {
			continue
		}
		total += d
		uses = append(uses, use{p.name, d})
	}
	sort.Slice(uses, func(i, j int) bool { return uses[i].cpu > uses[j].cpu })
	r := NoiseReport{Cores: round2(total.Seconds() / wall.Seconds())}
	for _, u := range uses[:min(3, len(uses))] {
		if c := u.cpu.Seconds() / wall.Seconds(); c >= 0.05 {
			r.Busiest = append(r.Busiest, u.name+" "+strconv.FormatFloat(round2(c), 'f', -1, 64))
		}
	}
	return r
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// report is Stop as a pointer, for a Load.
func (n *Noise) report() *NoiseReport { r := n.Stop(); return &r }
