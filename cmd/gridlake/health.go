package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/kafkaio"
)

const healthSynopsis = `Asks a running gridlake process whether it is ready, for container
healthchecks (the image has no curl): GET --url and exit 0 when the answer
is 200, 1 otherwise, printing what it said.

Without --url it asks http://127.0.0.1:PORT/readyz, PORT taken from
http.addr, so the GRIDLAKE_HTTP_ADDR a container already has is enough.
/readyz answers 200 when the process reaches its dependencies (Kafka, the
object store); /healthz only says that it runs.

With --kafka it checks instead that a Kafka broker of kafka.brokers answers,
for processes without an HTTP listener (gridlake simulate).

Example (docker-compose.yml): healthcheck: {test: ["CMD", "gridlake", "health"]}
Example: gridlake health --url http://127.0.0.1:8080/healthz --timeout 2s`

func runHealth(ctx context.Context, e *env, args []string) error {
	fs, loader := flags(e, "health", healthSynopsis)
	url := fs.String("url", "", "URL to GET (default: /readyz on the port of http.addr, on loopback)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	kafka := fs.Bool("kafka", false, "check that a Kafka broker answers instead of asking an HTTP URL")
	cfg, err := load(fs, loader, e, args)
	if err != nil {
		return err
	}
	if *kafka {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if err := kafkaio.Ping(ctx, cfg.BrokerAddrs()); err != nil {
			return fmt.Errorf("health: %w", err)
		}
		fmt.Fprintf(e.stdout, "kafka %v answers\n", cfg.BrokerAddrs())
		return nil
	}
	if *url == "" {
		*url = "http://" + loopbackOf(cfg.HTTP) + "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("%w: --url %q: %v", errUsage, *url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health %s: %w", *url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	fmt.Fprintf(e.stdout, "%s %s\n", resp.Status, strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health %s: %s", *url, resp.Status)
	}
	return nil
}

// loopbackOf is the address a process on the same host reaches h.Addr at:
// an unspecified host (":8080", "0.0.0.0:8080") becomes loopback.
func loopbackOf(h config.HTTP) string {
	host, port, err := net.SplitHostPort(h.Addr)
	if err != nil {
		return h.Addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}
