package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/internal/chaos"
	"github.com/gridlake/gridlake/internal/freeport"
	"github.com/gridlake/gridlake/internal/wait"
)

// Bounds of the scale-out topology: processes on one machine.
const (
	maxSpeedProcs = 64
	maxServeProcs = 16
)

// serveScaleOut is Serve with the serving layer beyond one process (DESIGN
// §12): the same data, then o.SpeedProcs `gridlake speed` processes that
// split the partitions through the consumer group and announce themselves
// in the lake, and o.ServeProcs `gridlake serve --serve-speed remote`
// processes that fan each query out to them. Once every serve process
// answers exactly, the same load is sent, its requests taking the serve
// processes in turn.
func serveScaleOut(ctx context.Context, o ServeOptions) (ServeResult, error) {
	o.SpeedProcs, o.ServeProcs = max(o.SpeedProcs, 1), max(o.ServeProcs, 1)
	if o.SpeedProcs > maxSpeedProcs || o.ServeProcs > maxServeProcs {
		return ServeResult{}, fmt.Errorf("send 1 to %d speed processes and 1 to %d serve processes", maxSpeedProcs, maxServeProcs)
	}
	begin := time.Now()
	res := ServeResult{Bench: "serve", SpeedProcs: o.SpeedProcs, ServeProcs: o.ServeProcs, Batteries: o.Batteries,
		TargetRPS: o.Rate, Conns: o.Conns, TargetP99: o.TargetP99}
	say := func(format string, args ...any) { fmt.Fprintf(o.Progress, "bench serve: "+format+"\n", args...) }
	dir, err := os.MkdirTemp("", "gridlake-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	d, err := startServeData(ctx, o, dir, &res)
	defer d.close()
	if err != nil {
		return res, err
	}
	token, users, err := benchUsers(dir)
	if err != nil {
		return res, err
	}

	so := d.minio.StoreOptions(benchBucket)
	common := []string{"--kafka-brokers", d.brokers[0], "--s3-endpoint", so.Endpoint, "--s3-access-key", so.AccessKey,
		"--s3-bucket", benchBucket, "--auth-users-file", users, "--site-timezone", "UTC", "--log-level", "warn",
		// As the in-process stack: no alert rules evaluated beside the
		// answers measured.
		"--alerts-enabled=false"}
	var procs []*chaos.Proc
	defer func() {
		for _, p := range procs {
			_ = p.Terminate(5 * time.Second)
		}
	}()
	// start runs one gridlake process (args(addr) names it and its own
	// flags) on a free loopback port and returns its base URL once
	// /healthz answers. Secrets go by environment, never as flags.
	start := func(name string, args func(addr string) []string, secrets ...string) (string, error) {
		port, err := freeport.Get()
		if err != nil {
			return "", err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		a := args(addr)
		p := &chaos.Proc{Name: name, Path: o.Binary, Log: filepath.Join(dir, name+".log"),
			Args: append(append([]string{a[0], "--http-addr", addr, "--data-dir", filepath.Join(dir, name)}, a[1:]...), common...),
			Env:  append([]string{"GRIDLAKE_S3_SECRET_KEY=" + so.SecretKey}, secrets...), Ready: chaos.HTTPReady("http://" + addr + "/healthz")}
		procs = append(procs, p)
		if err := p.Start(2 * time.Minute); err != nil {
			return "", fmt.Errorf("%w\n%s", err, logTail(p.Log))
		}
		return "http://" + addr, nil
	}
	say("starting %d speed processes and %d serve processes (serve.speed=remote)", o.SpeedProcs, o.ServeProcs)
	var speeds []string
	for i := range o.SpeedProcs {
		// The advertised URL named explicitly, as a deployment behind NAT
		// or in containers names it.
		base, err := start(fmt.Sprintf("speed-%d", i), func(addr string) []string {
			return []string{"speed", "--speed-advertise-url", "http://" + addr}
		})
		if err != nil {
			return res, err
		}
		speeds = append(speeds, base)
	}
	var bases []string
	for i := range o.ServeProcs {
		base, err := start(fmt.Sprintf("serve-%d", i), func(string) []string {
			return []string{"serve", "--serve-speed", "remote", "--serve-pg-addr", "", "--serve-flight-addr", "", "--jobs-enabled=false"}
		}, "GRIDLAKE_SERVE_SPEED_TOKEN="+token)
		if err != nil {
			return res, err
		}
		bases = append(bases, base)
	}

	say("waiting until every serve process answers the %d readings exactly", d.batteryReadings)
	cl := &http.Client{Transport: withToken(token, nil), Timeout: 30 * time.Second}
	for deadline := time.Now().Add(5 * time.Minute); ; {
		err := answersExactly(cl, bases, d, o.Batteries)
		if err == nil {
			break
		}
		for _, p := range procs {
			if !p.Running() {
				return res, fmt.Errorf("%s exited (%v)\n%s", p.Name, p.Err(), logTail(p.Log))
			}
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("the serve processes did not answer exactly in 5 minutes: %w", err)
		}
		if err := wait.Sleep(ctx, time.Second); err != nil {
			return res, err
		}
	}
	if o.ProfileDir != "" {
		// CPU profiles of the first serve and speed processes over the
		// measured run (the bench's own profile holds the broker).
		var wg sync.WaitGroup
		defer wg.Wait()
		secs := strconv.Itoa(min(o.Seconds, 30))
		o.onMeasure = func() {
			for name, base := range map[string]string{"serve-0": bases[0], "speed-0": speeds[0]} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					saveProfile(&http.Client{Transport: withToken(token, nil)}, strings.TrimPrefix(base, "http://"),
						"profile?seconds="+secs, filepath.Join(o.ProfileDir, name+"-cpu.pprof"))
				}()
			}
		}
	}
	o.brokers = d.brokers
	res, err = measureServe(ctx, o, res, begin, bases, token)
	for _, p := range procs {
		if !p.Running() && err == nil {
			err = fmt.Errorf("%s exited during the load (%v)\n%s", p.Name, p.Err(), logTail(p.Log))
		}
	}
	return res, err
}

// benchUsers writes a users file under dir with one admin token, which the
// bench's processes share: the load sends it, and the serve processes ask
// the speed processes with it.
func benchUsers(dir string) (token, path string, err error) {
	if token, err = auth.NewToken("bench"); err != nil {
		return "", "", err
	}
	e, err := auth.NewEntry("bench", auth.Admin, token, time.Now())
	if err != nil {
		return "", "", err
	}
	var f auth.File
	f.Put("token", e)
	path = filepath.Join(dir, "users.yaml")
	return token, path, auth.WriteFile(path, f)
}

// answersExactly checks every serve process against the data loaded:
// every battery in fleet/now, every reading in the fleet's hours; and that
// all answer a sample of battery stats, latest readings and the fleet's
// hours alike (their freshness aside, which carries the time of asking).
func answersExactly(cl *http.Client, bases []string, d *serveData, batteries int) error {
	from, to := d.hour.UnixMilli(), time.Now().Add(time.Hour).UnixMilli()
	fleet := fmt.Sprintf("/v1/fleet/stats?res=1h&from=%d&to=%d", from, to)
	paths := []string{fleet}
	for i := range 8 {
		id := fmt.Sprintf("B-%05d", i*batteries/8)
		paths = append(paths, fmt.Sprintf("/v1/batteries/%s/stats?res=1m&from=%d&to=%d", id, from, to), "/v1/batteries/"+id)
	}
	first := map[string][]byte{}
	for i, base := range bases {
		var now struct{ Fleet struct{ Batteries int } }
		if err := getJSON(cl, base+"/v1/fleet/now?stale_after=24h", &now); err != nil {
			return err
		}
		if now.Fleet.Batteries != batteries {
			return fmt.Errorf("%s: fleet/now counts %d batteries, want %d", base, now.Fleet.Batteries, batteries)
		}
		var fs struct{ Windows []struct{ Readings int64 } }
		if err := getJSON(cl, base+fleet, &fs); err != nil {
			return err
		}
		var n int64
		for _, w := range fs.Windows {
			n += w.Readings
		}
		if n != d.batteryReadings {
			return fmt.Errorf("%s: the fleet's hours hold %d readings, want %d", base, n, d.batteryReadings)
		}
		for _, p := range paths {
			var body map[string]json.RawMessage
			if err := getJSON(cl, base+p, &body); err != nil {
				return err
			}
			delete(body, "freshness")
			b, _ := json.Marshal(body)
			if i == 0 {
				first[p] = b
			} else if !bytes.Equal(b, first[p]) {
				return fmt.Errorf("%s and %s answer GET %s differently", bases[0], base, p)
			}
		}
	}
	return nil
}

// getJSON decodes a 200 answer of url into v.
func getJSON(cl *http.Client, url string, v any) error {
	resp, err := cl.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.300s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// logTail is the end of a child's log, for an error that cites it (the
// bench's folder is gone once it returns).
func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return fmt.Sprintf("last lines of %s:\n%s", filepath.Base(path), data)
}
