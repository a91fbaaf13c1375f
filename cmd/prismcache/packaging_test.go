package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/prismcache/prismcache/internal/config"
)

// The packaging files are checked against this binary: every command line
// in them must parse with the command's own flags, every environment
// variable must be a setting's, and the ports they publish and probe must
// be the ones the command lines listen on.

const repoRoot = "../.."

func readRepoFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustParse checks that args parse as a command line of this binary: the
// command and its flags (anything after them is left alone), by running it
// with -h, which stops at the first bad flag with exit code 2.
func mustParse(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: no command", where)
	}
	var errOut bytes.Buffer
	if rc := run(context.Background(), append(slices.Clone(args), "-h"), &bytes.Buffer{}, &errOut); rc != 0 {
		t.Errorf("%s: %q does not parse as a prismcache command line (exit %d):\n%s", where, args, rc, firstLines(errOut.String(), 3))
	}
}

func firstLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[:n]
	}
	return strings.Join(l, "\n")
}

// flagValue is the value of --name (or -name) in args, "" if absent.
func flagValue(args []string, name string) string {
	for i, a := range args {
		for _, p := range []string{"-" + name, "--" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	return ""
}

func port(t *testing.T, where, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: address %q: %v", where, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s: port %q", where, p)
	}
	return n
}

// servePorts checks a serve command line and returns the ports of its
// listeners: the public one, and the admin one (0 when it shares).
func servePorts(t *testing.T, where string, args []string) (public, admin int) {
	t.Helper()
	if args[0] != "serve" {
		t.Fatalf("%s: runs %q, not serve", where, args[0])
	}
	mustParse(t, where, args)
	listen := flagValue(args, "listen")
	if listen == "" {
		t.Fatalf("%s: serve without --listen", where)
	}
	public = port(t, where, listen)
	if a := flagValue(args, "admin-listen"); a != "" {
		admin = port(t, where, a)
	} else {
		t.Errorf("%s: no --admin-listen: /metrics and /v1 would share the webhook port", where)
	}
	if flagValue(args, "log-format") != "json" {
		t.Errorf("%s: logs are not JSON (--log-format json)", where)
	}
	return public, admin
}

func knownEnv(t *testing.T, where string, names []string) {
	t.Helper()
	c := config.Default()
	known := c.EnvVars()
	for _, n := range names {
		if n == "GOMEMLIMIT" || n == "GOGC" {
			continue
		}
		if !slices.Contains(known, n) {
			t.Errorf("%s: %s is not a setting of prismcache", where, n)
		}
	}
}

// TestDockerfile: two stages; the build runs make build, as CI does; the
// image runs as a non-root user on a minimal base; it exposes the ports
// its command listens on.
func TestDockerfile(t *testing.T) {
	var froms, runs, exposed []string
	var user string
	var cmd []string
	sc := bufio.NewScanner(bytes.NewReader(readRepoFile(t, "Dockerfile")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		word, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(word) {
		case "FROM":
			froms = append(froms, rest)
		case "RUN":
			runs = append(runs, rest)
		case "USER":
			user = rest
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(rest)...)
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &cmd); err != nil {
				t.Fatalf("CMD is not a JSON array: %v", err)
			}
		}
	}
	if len(froms) < 2 {
		t.Fatalf("one stage: %q", froms)
	}
	final := froms[len(froms)-1]
	if !strings.Contains(final, "distroless/static") && final != "scratch" {
		t.Errorf("final stage %q is not a minimal base", final)
	}
	if !slices.ContainsFunc(runs, func(r string) bool { return strings.HasPrefix(r, "make build ") }) {
		t.Errorf("the build stage does not run make build: %q", runs)
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("USER %q: the image runs as root", user)
	}
	public, admin := servePorts(t, "Dockerfile CMD", cmd)
	for _, p := range []int{public, admin} {
		if !slices.Contains(exposed, strconv.Itoa(p)) {
			t.Errorf("Dockerfile listens on %d but EXPOSEs %q", p, exposed)
		}
	}
	// The build stage's command is make's: check make build makes a static
	// binary (no cgo) with the version stamped.
	mk := string(readRepoFile(t, "Makefile"))
	if !regexp.MustCompile(`(?m)^build:.*\n\tCGO_ENABLED=0 \$\(GO\) build \$\(BUILDFLAGS\)`).MatchString(mk) || !strings.Contains(mk, "-trimpath") || !strings.Contains(mk, "-X main.version=$(VERSION)") {
		t.Error("make build is not a static, trimmed, versioned build")
	}
}

type composeFile struct {
	Services map[string]struct {
		Build       any               `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Profiles    []string          `yaml:"profiles"`
		DependsOn   map[string]any    `yaml:"depends_on"`
	} `yaml:"services"`
}

// TestCompose: prismcache and Redis, the simulator behind a profile; the
// ports published are those the commands listen on, the admin one on
// loopback only.
func TestCompose(t *testing.T) {
	var c composeFile
	if err := yaml.Unmarshal(readRepoFile(t, "compose.yaml"), &c); err != nil {
		t.Fatal(err)
	}
	pc, ok := c.Services["prismcache"]
	if !ok || pc.Build == nil {
		t.Fatal("no prismcache service built from the Dockerfile")
	}
	if _, ok := c.Services["redis"]; !ok {
		t.Fatal("no redis service")
	}
	if _, ok := pc.DependsOn["redis"]; !ok {
		t.Error("prismcache does not wait for redis")
	}
	public, admin := servePorts(t, "compose prismcache", pc.Command)
	var names []string
	for k := range pc.Environment {
		names = append(names, k)
	}
	knownEnv(t, "compose prismcache", names)
	if u := pc.Environment["PRISMCACHE_REDIS_URL"]; !strings.Contains(u, "//redis:") {
		t.Errorf("PRISMCACHE_REDIS_URL %q is not the redis service", u)
	}
	published := map[int]string{}
	for _, p := range pc.Ports {
		i := strings.LastIndex(p, ":")
		n, err := strconv.Atoi(p[i+1:])
		if err != nil {
			t.Fatalf("port %q", p)
		}
		published[n] = p
	}
	if _, ok := published[public]; !ok {
		t.Errorf("the webhook port %d is not published: %q", public, pc.Ports)
	}
	if p := published[admin]; !strings.HasPrefix(p, "127.0.0.1:") {
		t.Errorf("the admin port %d is published as %q, not on loopback only", admin, p)
	}
	sim, ok := c.Services["sim"]
	if !ok || !slices.Contains(sim.Profiles, "sim") {
		t.Fatal("no simulator behind the sim profile")
	}
	args := slices.Clone(sim.Command)
	for i, a := range args {
		args[i] = os.Expand(a, func(string) string { return "x" })
	}
	if args[0] != "sim" {
		t.Fatalf("the sim service runs %q", args)
	}
	mustParse(t, "compose sim", args)
	if u := flagValue(args, "webhook-url"); !strings.HasPrefix(u, "http://prismcache:"+strconv.Itoa(public)+"/webhooks/prismatic") {
		t.Errorf("the simulator sends webhooks to %q, not to prismcache's port %d", u, public)
	}
}

// TestSystemdUnit: the command line parses, SIGTERM stops it with time for
// the graceful shutdown, nothing sends SIGTERM as a reload, secrets come
// from an environment file, and the hardening options are set.
func TestSystemdUnit(t *testing.T) {
	unit := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(readRepoFile(t, "deploy/systemd/prismcache.service")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("line %q", line)
		}
		unit[section+"."+k] = append(unit[section+"."+k], v)
	}
	exec := strings.Fields(strings.Join(unit["Service.ExecStart"], " "))
	if len(exec) < 2 || filepath.Base(exec[0]) != "prismcache" {
		t.Fatalf("ExecStart %q", exec)
	}
	servePorts(t, "ExecStart", exec[1:])
	if r, ok := unit["Service.ExecReload"]; ok {
		t.Errorf("ExecReload=%q: the daemon has no reload, and SIGTERM would stop it", r)
	}
	if ks := unit["Service.KillSignal"]; len(ks) > 0 && ks[0] != "SIGTERM" {
		t.Errorf("KillSignal=%s, want SIGTERM for the graceful shutdown", ks[0])
	}
	stop, err := time.ParseDuration(strings.Join(unit["Service.TimeoutStopSec"], ""))
	if err != nil || stop <= shutdownTimeout {
		t.Errorf("TimeoutStopSec=%q: want more than the %s the daemon takes to stop", unit["Service.TimeoutStopSec"], shutdownTimeout)
	}
	if len(unit["Service.EnvironmentFile"]) == 0 {
		t.Error("no EnvironmentFile for the secrets")
	}
	for _, k := range []string{"DynamicUser", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
		"RestrictAddressFamilies", "SystemCallFilter", "CapabilityBoundingSet", "MemoryDenyWriteExecute"} {
		if len(unit["Service."+k]) == 0 {
			t.Errorf("no %s=", k)
		}
	}
	var names []string
	sc = bufio.NewScanner(bytes.NewReader(readRepoFile(t, "deploy/systemd/prismcache.env.example")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _ := strings.Cut(line, "=")
		names = append(names, k)
	}
	if len(names) < 3 {
		t.Fatalf("the environment file example sets %q", names)
	}
	knownEnv(t, "prismcache.env.example", names)
}

// k8sObject is the part of the manifests the test reads.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas     *int `yaml:"replicas"`
		MinAvailable any  `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		ServiceSelector map[string]string `yaml:"-"`
		Ports           []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name   string `yaml:"name"`
					Secret struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
}

func readManifests(t *testing.T) map[string][]k8sObject {
	t.Helper()
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/kubernetes/kustomization.yaml"), &kust); err != nil {
		t.Fatal(err)
	}
	byKind := map[string][]k8sObject{}
	for _, r := range kust.Resources {
		dec := yaml.NewDecoder(bytes.NewReader(readRepoFile(t, "deploy/kubernetes/"+r)))
		for {
			var o k8sObject
			if err := dec.Decode(&o); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", r, err)
			}
			byKind[o.Kind] = append(byKind[o.Kind], o)
		}
	}
	return byKind
}

// TestKubernetesManifests: two or more replicas, probes on /healthz of the
// webhook port (never /readyz), the ports and flags of serve, secrets
// from the Secret as files, a Service for the webhook port and a
// PodDisruptionBudget over the same pods.
func TestKubernetesManifests(t *testing.T) {
	m := readManifests(t)
	for _, kind := range []string{"Deployment", "Service", "Secret", "PodDisruptionBudget"} {
		if len(m[kind]) == 0 {
			t.Fatalf("no %s", kind)
		}
	}
	d := m["Deployment"][0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas %v, want at least 2", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if pod.TerminationGracePeriodSeconds <= int(shutdownTimeout.Seconds()) {
		t.Errorf("terminationGracePeriodSeconds %d: fetches in flight get %s", pod.TerminationGracePeriodSeconds, shutdownTimeout)
	}
	if !pod.SecurityContext.RunAsNonRoot {
		t.Error("the pod may run as root")
	}
	c := pod.Containers[0]
	public, admin := servePorts(t, "Deployment args", c.Args)
	portByName := map[string]int{}
	for _, p := range c.Ports {
		portByName[p.Name] = p.ContainerPort
	}
	if !slices.Contains(mapsValues(portByName), public) || !slices.Contains(mapsValues(portByName), admin) {
		t.Errorf("container ports %v, want %d and %d", portByName, public, admin)
	}
	for name, probe := range map[string]*k8sProbe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if probe == nil {
			if name != "startup" {
				t.Errorf("no %s probe", name)
			}
			continue
		}
		if probe.HTTPGet.Path != "/healthz" {
			t.Errorf("%s probe on %q: webhook traffic follows /healthz, never /readyz", name, probe.HTTPGet.Path)
		}
		if p := resolvePort(probe.HTTPGet.Port, portByName); p != public {
			t.Errorf("%s probe on port %v, not the webhook port %d", name, probe.HTTPGet.Port, public)
		}
	}
	var names []string
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.Name] = vm.MountPath
	}
	secretMount := ""
	for _, v := range pod.Volumes {
		if v.Secret.SecretName == m["Secret"][0].Metadata.Name {
			secretMount = mounts[v.Name]
		}
	}
	if secretMount == "" {
		t.Fatal("the Secret is not mounted")
	}
	for _, e := range c.Env {
		names = append(names, e.Name)
		if strings.HasSuffix(e.Name, "_FILE") {
			key, ok := strings.CutPrefix(e.Value, secretMount+"/")
			if _, inSecret := m["Secret"][0].StringData[key]; !ok || !inSecret {
				t.Errorf("%s=%s is not a key of the mounted Secret", e.Name, e.Value)
			}
		}
		if strings.Contains(e.Name, "SECRET") && !strings.HasSuffix(e.Name, "_FILE") || strings.HasSuffix(e.Name, "TOKEN") {
			t.Errorf("%s is a secret in the environment; mount it as a file", e.Name)
		}
	}
	knownEnv(t, "Deployment env", names)
	webhook := false
	for _, s := range m["Service"] {
		for _, p := range s.Spec.Ports {
			switch resolvePort(p.TargetPort, portByName) {
			case public:
				webhook = true
			case admin:
			default:
				t.Errorf("Service %s targets %v, which the container does not listen on", s.Metadata.Name, p.TargetPort)
			}
		}
	}
	if !webhook {
		t.Error("no Service for the webhook port")
	}
	pdb := m["PodDisruptionBudget"][0]
	for k, v := range pdb.Spec.Selector.MatchLabels {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("the PodDisruptionBudget selects %s=%s, which the pods do not have", k, v)
		}
	}
	if pdb.Spec.MinAvailable == nil {
		t.Error("the PodDisruptionBudget sets no minAvailable")
	}
}

func resolvePort(p any, byName map[string]int) int {
	switch v := p.(type) {
	case int:
		return v
	case string:
		return byName[v]
	}
	return -1
}

func mapsValues(m map[string]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
