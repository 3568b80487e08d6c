package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Setting is one configurable value with its three names.
type Setting struct {
	Key  string // YAML path, e.g. s3.access_key
	Flag string // --s3-access-key
	Env  string // GRIDLAKE_S3_ACCESS_KEY
	Help string
	// Secret settings are never flags (ps shows flags to every user): they
	// come from the YAML file, GRIDLAKE_X, or a file named by GRIDLAKE_X_FILE.
	Secret bool
	v      reflect.Value // addressable field inside a Config
}

// Keys lists every setting of c in declaration order. The returned settings
// point into c.
func Keys(c *Config) []Setting {
	var out []Setting
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			key := prefix + strings.Split(f.Tag.Get("yaml"), ",")[0]
			if f.Type.Kind() == reflect.Struct {
				walk(v.Field(i), key+".")
				continue
			}
			out = append(out, Setting{
				Key:    key,
				Flag:   strings.NewReplacer(".", "-", "_", "-").Replace(key),
				Env:    "GRIDLAKE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_")),
				Help:   f.Tag.Get("help"),
				Secret: f.Tag.Get("secret") == "true",
				v:      v.Field(i),
			})
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return out
}

// set parses text into the setting's field.
func (s Setting) set(text string) error {
	switch p := s.v.Addr().Interface().(type) {
	case *string:
		*p = text
	case *int:
		n, err := strconv.Atoi(text)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", text)
		}
		*p = n
	case *uint64:
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a non-negative whole number", text)
		}
		*p = n
	case *float64:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", text)
		}
		*p = f
	case *bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("%q is not true or false", text)
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(text)
		if err != nil {
			return fmt.Errorf("%q is not a duration (for example 90s, 5m, 24h)", text)
		}
		*p = d
	case *[]string:
		*p = nil
		for _, part := range strings.Split(text, ",") {
			if part = strings.TrimSpace(part); part != "" {
				*p = append(*p, part)
			}
		}
	default:
		return fmt.Errorf("unsupported setting type %s", s.v.Type())
	}
	return nil
}

func (s Setting) String() string {
	if l, ok := s.v.Interface().([]string); ok {
		return strings.Join(l, ",")
	}
	return fmt.Sprint(s.v.Interface())
}

// Loader binds the settings to a flag set and, after parsing, merges
// defaults, the YAML file, the environment and the flags.
type Loader struct {
	fs      *flag.FlagSet
	file    string
	visited map[string]string // flag name -> text given
}

// flagText records what a flag was given; the value is applied later, in
// precedence order, by Load.
type flagText struct {
	l    *Loader
	name string
	def  string
	bool bool
}

func (f *flagText) String() string     { return f.def }
func (f *flagText) Set(v string) error { f.l.visited[f.name] = v; return nil }
func (f *flagText) IsBoolFlag() bool   { return f.bool }

// Register adds --config and one flag per setting to fs.
func Register(fs *flag.FlagSet) *Loader {
	l := &Loader{fs: fs, visited: map[string]string{}}
	fs.StringVar(&l.file, "config", "", "YAML configuration file (env GRIDLAKE_CONFIG)")
	def := Default()
	for _, s := range Keys(&def) {
		if s.Secret {
			continue
		}
		_, isBool := s.v.Interface().(bool)
		fs.Var(&flagText{l: l, name: s.Flag, def: s.String(), bool: isBool}, s.Flag, s.Help+" (env "+s.Env+")")
	}
	return l
}

// Load builds the configuration after fs.Parse: defaults, then the YAML
// file, then GRIDLAKE_* variables from getenv, then flags. It validates the
// result and reports every problem at once.
func (l *Loader) Load(getenv func(string) string) (Config, error) {
	c := Default()
	file := l.file
	if file == "" {
		file = getenv("GRIDLAKE_CONFIG")
	}
	if file != "" {
		if err := loadYAML(file, &c); err != nil {
			return c, err
		}
	}
	var errs []error
	for _, s := range Keys(&c) {
		if v := getenv(s.Env); v != "" {
			if err := s.set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.Env, err))
			}
		} else if path := getenv(s.Env + "_FILE"); s.Secret && path != "" {
			v, err := readSecretFile(path)
			if err == nil {
				err = s.set(v)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s_FILE: %w", s.Env, err))
			}
		}
		if v, ok := l.visited[s.Flag]; ok {
			if err := s.set(v); err != nil {
				errs = append(errs, fmt.Errorf("--%s: %w", s.Flag, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}

// maxSecretBytes bounds a secret file (a key, not a document).
const maxSecretBytes = 64 << 10

// readSecretFile reads a secret such as a Docker or Kubernetes secret
// file, without its trailing newline.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", path, err)
	}
	if len(data) > maxSecretBytes {
		return "", fmt.Errorf("secret file %s is larger than %d bytes", path, maxSecretBytes)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

func loadYAML(path string, c *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key is an error, not a silent default
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse config file %s: %w", path, err)
	}
	return nil
}
