package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/config"
)

// apiClient talks to a running gridlake's HTTP API as a client of this
// machine's configuration: https when http.tls_cert_file is set (trusting
// that certificate besides the system's roots), with the token of
// $GRIDLAKE_TOKEN or the demo token kept in the data directory.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(e *env, cfg *config.Config) (*apiClient, error) {
	tok, err := auth.ClientToken(e.getenv, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	c := &apiClient{base: "http://" + cfg.HTTP.Addr, token: tok, http: &http.Client{}}
	if cfg.HTTP.TLSCertFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(cfg.HTTP.TLSCertFile)
		if err != nil {
			return nil, fmt.Errorf("read http.tls_cert_file to trust it: %w", err)
		}
		pool.AppendCertsFromPEM(pem)
		c.base = "https://" + cfg.HTTP.Addr
		c.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}}
	}
	return c, nil
}

// do sends req with the token.
func (c *apiClient) do(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.http.Do(req)
}
