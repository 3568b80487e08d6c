package alertd

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Receiver is one webhook receiver.
type Receiver struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// BearerTokenFile holds the token sent as Authorization: Bearer; a
	// file (a Docker or Kubernetes secret), never a flag or the file
	// itself, so the token shows in no process list or config dump.
	BearerTokenFile string        `yaml:"bearer_token_file"`
	Timeout         time.Duration `yaml:"timeout"`

	token string
}

var receiverName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// maxReceivers bounds a receivers file.
const maxReceivers = 64

// ReadReceivers reads a receivers file (notify.receivers_file):
//
//	receivers:
//	  - {name: oncall, url: https://..., bearer_token_file: /run/secrets/oncall, timeout: 10s}
func ReadReceivers(path string) ([]Receiver, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("notify.receivers_file: %w", err)
	}
	rs, err := ParseReceivers(b, os.ReadFile)
	if err != nil {
		return nil, fmt.Errorf("notify.receivers_file %s: %w", path, err)
	}
	return rs, nil
}

// ParseReceivers parses a receivers file; readFile reads token files.
func ParseReceivers(b []byte, readFile func(string) ([]byte, error)) ([]Receiver, error) {
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("%d bytes, more than 1 MiB", len(b))
	}
	var doc struct {
		Receivers []Receiver `yaml:"receivers"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if len(doc.Receivers) > maxReceivers {
		return nil, fmt.Errorf("%d receivers, more than %d", len(doc.Receivers), maxReceivers)
	}
	var errs []error
	seen := map[string]bool{}
	for i := range doc.Receivers {
		r := &doc.Receivers[i]
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("receiver %d (%s): %s", i+1, r.Name, fmt.Sprintf(format, args...)))
		}
		if !receiverName.MatchString(r.Name) || seen[r.Name] {
			bad("name must be unique, lower-case letters, digits, - and _")
		}
		seen[r.Name] = true
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("url %q must be an http or https URL", r.URL)
		}
		if r.Timeout == 0 {
			r.Timeout = 10 * time.Second
		}
		if r.Timeout < 0 || r.Timeout > 5*time.Minute {
			bad("timeout %s must be above 0 and at most 5m", r.Timeout)
		}
		if r.BearerTokenFile != "" {
			tok, err := readFile(r.BearerTokenFile)
			switch {
			case err != nil:
				bad("bearer_token_file: %v", err)
			case len(tok) > 8<<10:
				bad("bearer_token_file %s is larger than 8 KiB", r.BearerTokenFile)
			default:
				r.token = strings.TrimSpace(string(tok))
			}
		}
	}
	return doc.Receivers, errors.Join(errs...)
}
