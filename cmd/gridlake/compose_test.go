package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/gridlake/gridlake/config"
)

// The deployment files, read by the tests so that what they start is what
// compose starts.
const (
	composePath    = "../../docker-compose.yml"
	dockerfilePath = "../../Dockerfile"
	envExamplePath = "../../gridlake.env.example"
	makefilePath   = "../../Makefile"
	gitignorePath  = "../../.gitignore"
)

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Build       any               `yaml:"build"`
	Image       string            `yaml:"image"`
	Command     stringList        `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Healthcheck struct {
		Test stringList `yaml:"test"`
	} `yaml:"healthcheck"`
	Deploy struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
}

// stringList is a compose command: a list, or a string split at spaces.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	var list []string
	err := n.Decode(&list)
	*l = list
	return err
}

// gridlake reports whether the service runs the gridlake image.
func (s composeService) gridlake() bool { return s.Image == "gridlake:latest" }

func readCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("parse %s: %v", composePath, err)
	}
	return c
}

// interpolation is compose's ${VAR}, ${VAR:?message} and ${VAR:-default}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}`)

// interpolate substitutes vars into s as compose does from .env; a
// required variable missing from vars fails the test.
func interpolate(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		g := interpolation.FindStringSubmatch(m)
		if v, ok := vars[g[1]]; ok && v != "" {
			return v
		}
		if g[2] == "-" {
			return g[3]
		}
		t.Fatalf("%s needs %s, which the test does not set", m, g[1])
		return ""
	})
}

// envExampleKeys are the variables gridlake.env.example lists.
func envExampleKeys(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(envExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || v != "" {
			t.Fatalf("%s: %q: the example must list names without values", envExamplePath, line)
		}
		keys = append(keys, k)
	}
	return keys
}

// imageEnv is the ENV of the Dockerfile's last stage (the gridlake image).
func imageEnv(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "FROM":
			clear(env)
		case len(f) > 1 && f[0] == "ENV":
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	return env
}

// TestDeploy_ComposeAndDockerfile checks the deployment files by what they
// promise: secrets only from the uncommitted .env (each listed in the
// example, none with a default, none on a command line), no published
// MinIO or Kafka port, a healthcheck on every gridlake service, only
// settings config knows, serve fanning out to speed replicas, MinIO pinned like the Makefile,
// and an image whose data directory is its working directory and volume.
func TestDeploy_ComposeAndDockerfile(t *testing.T) {
	c := readCompose(t)
	raw, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}

	// Every interpolated variable is required and listed in the example.
	example := envExampleKeys(t)
	var used []string
	for _, m := range interpolation.FindAllStringSubmatch(string(raw), -1) {
		if m[2] != "?" {
			t.Errorf("%s has a default: secrets and settings from .env have none", m[0])
		}
		if !slices.Contains(used, m[1]) {
			used = append(used, m[1])
		}
	}
	slices.Sort(used)
	slices.Sort(example)
	if !slices.Equal(used, example) {
		t.Errorf("compose interpolates %v; %s lists %v", used, envExamplePath, example)
	}
	ignored, err := os.ReadFile(gitignorePath)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(string(ignored)), ".env") {
		t.Errorf(".gitignore does not keep .env out of git")
	}

	known := map[string]bool{}
	def := config.Default()
	for _, s := range config.Keys(&def) {
		known[s.Env] = true
		if s.Secret {
			known[s.Env+"_FILE"] = true
		}
	}
	secret := regexp.MustCompile(`(?i)password|secret|token|_key$`)
	for name, s := range c.Services {
		for _, arg := range s.Command {
			if secret.MatchString(strings.TrimLeft(arg, "-")) {
				t.Errorf("service %s passes %q on its command line: secrets come from the environment", name, arg)
			}
		}
		for k, v := range s.Environment {
			if secret.MatchString(k) && !interpolation.MatchString(v) {
				t.Errorf("service %s sets %s in the file: it must come from .env", name, k)
			}
		}
		if !s.gridlake() {
			continue
		}
		if len(s.Healthcheck.Test) < 3 || s.Healthcheck.Test[1] != "gridlake" || s.Healthcheck.Test[2] != "health" {
			t.Errorf("service %s: healthcheck %v, want gridlake health", name, s.Healthcheck.Test)
		}
		for k := range s.Environment {
			if strings.HasPrefix(k, "GRIDLAKE_") && !known[k] {
				t.Errorf("service %s sets %s, which no setting reads (misspelt?)", name, k)
			}
		}
	}
	for _, name := range []string{"minio", "kafka"} {
		if len(c.Services[name].Ports) > 0 {
			t.Errorf("service %s publishes %v: only the gridlake services reach it", name, c.Services[name].Ports)
		}
	}
	if got := c.Services["kafka"].Environment["KAFKA_LOG_DIRS"]; !slices.ContainsFunc(c.Services["kafka"].Volumes, func(v string) bool {
		_, dst, _ := strings.Cut(v, ":")
		return got != "" && strings.HasPrefix(got, dst)
	}) {
		t.Errorf("KAFKA_LOG_DIRS %q is not in one of Kafka's volumes %v", got, c.Services["kafka"].Volumes)
	}
	// Serve scales only over a speed layer of its own service (DESIGN §12).
	if r := c.Services["serve"].Deploy.Replicas; r > 1 && c.Services["serve"].Environment["GRIDLAKE_SERVE_SPEED"] != "remote" {
		t.Errorf("serve runs %d replicas with its speed layer in-process, which must own every partition: set GRIDLAKE_SERVE_SPEED=remote", r)
	}
	if r := c.Services["speed"].Deploy.Replicas; c.Services["serve"].Environment["GRIDLAKE_SERVE_SPEED"] == "remote" && r < 2 {
		t.Errorf("speed runs %d replicas; serve fans out to it, and the production shape runs at least two", r)
	}
	if r := c.Services["jobs"].Deploy.Replicas; r < 2 {
		t.Errorf("jobs runs %d replicas; the production shape runs at least two", r)
	}

	// MinIO is built from the module version the tests pin.
	mk, err := os.ReadFile(makefilePath)
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	pin := regexp.MustCompile(`(?m)^MINIO_VERSION\s*:=\s*(\S+)`).FindSubmatch(mk)
	arg := regexp.MustCompile(`(?m)^ARG MINIO_VERSION=(\S+)`).FindSubmatch(df)
	if pin == nil || arg == nil || string(pin[1]) != string(arg[1]) {
		t.Errorf("Makefile pins MinIO %q, the Dockerfile builds %q", pin, arg)
	} else if img := c.Services["minio"].Image; !strings.HasSuffix(img, ":"+string(pin[1])) {
		t.Errorf("compose tags MinIO %q, not with the pinned version %s", img, pin[1])
	}
	if !strings.Contains(string(df), "go install -trimpath github.com/minio/minio@${MINIO_VERSION}") {
		t.Errorf("the Dockerfile does not build MinIO from the pinned module")
	}

	// The image: data dir = working dir = volume, owned by the user.
	env := imageEnv(t)
	dir := env["GRIDLAKE_DATA_DIR"]
	for _, want := range []string{"WORKDIR " + dir, "VOLUME " + dir, "chown 65532:65532 " + dir, "USER 65532:65532"} {
		if dir == "" || !strings.Contains(string(df), want) {
			t.Errorf("the gridlake image lacks %q (GRIDLAKE_DATA_DIR %q)", want, dir)
		}
	}
	for _, v := range c.Services["serve"].Volumes {
		if vol, dst, _ := strings.Cut(v, ":"); dst == dir {
			if _, ok := c.Volumes[vol]; !ok {
				t.Errorf("serve mounts %s at its data dir, but it is not a named volume", vol)
			}
		}
	}
	ign, err := os.ReadFile(filepath.Join("../..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "bin/", "data/", ".env"} {
		if !slices.Contains(strings.Fields(string(ign)), want) {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
	}
}
