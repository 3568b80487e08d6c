// Package headless drives Debian's Chromium for browser tests over the
// DevTools protocol on a pipe (--remote-debugging-pipe): one browser, one
// tab, so a session cookie set by a sign-in form carries to later pages.
// No websocket library: the pipe speaks NUL-terminated JSON messages.
package headless

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Browser is a headless Chromium with one tab.
type Browser struct {
	cmd     *exec.Cmd
	w       *os.File
	session string

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan reply
	dead    error
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// Start launches Chromium (bin) with a fresh profile in dataDir.
func Start(ctx context.Context, bin, dataDir string) (*Browser, error) {
	// Chromium reads commands on fd 3 and writes answers on fd 4.
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--remote-debugging-pipe",
		"--user-data-dir="+dataDir, "about:blank")
	cmd.ExtraFiles = []*os.File{cmdR, outW}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	cmdR.Close()
	outW.Close()
	b := &Browser{cmd: cmd, w: cmdW, waiting: map[int]chan reply{}}
	go b.read(outR)
	var targets struct {
		TargetInfos []struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
		} `json:"targetInfos"`
	}
	if err := b.call("", "Target.getTargets", nil, &targets); err != nil {
		b.Close()
		return nil, err
	}
	var page string
	for _, t := range targets.TargetInfos {
		if t.Type == "page" {
			page = t.TargetID
		}
	}
	if page == "" {
		var created struct {
			TargetID string `json:"targetId"`
		}
		if err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &created); err != nil {
			b.Close()
			return nil, err
		}
		page = created.TargetID
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call("", "Target.attachToTarget", map[string]any{"targetId": page, "flatten": true}, &att); err != nil {
		b.Close()
		return nil, err
	}
	b.session = att.SessionID
	return b, nil
}

func (b *Browser) read(r *os.File) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.dead = fmt.Errorf("chromium closed its pipe: %w", err)
			for id, ch := range b.waiting {
				close(ch)
				delete(b.waiting, id)
			}
			b.mu.Unlock()
			return
		}
		var m struct {
			ID int `json:"id"`
			reply
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
			continue // an event
		}
		b.mu.Lock()
		ch := b.waiting[m.ID]
		delete(b.waiting, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m.reply
		}
	}
}

// call sends one DevTools command and decodes its result into out.
func (b *Browser) call(session, method string, params any, out any) error {
	b.mu.Lock()
	if b.dead != nil {
		b.mu.Unlock()
		return b.dead
	}
	b.nextID++
	id := b.nextID
	ch := make(chan reply, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if _, err := b.w.Write(append(data, 0)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: chromium went away", method)
		}
		if r.Error != nil {
			return fmt.Errorf("%s: %s", method, r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("%s: no answer in 60s", method)
	}
}

// Size sets the viewport.
func (b *Browser) Size(width, height int) error {
	return b.call(b.session, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}, nil)
}

// Open loads url afresh (through about:blank, so a change of hash alone
// is a full load too).
func (b *Browser) Open(url string) error {
	for _, u := range []string{"about:blank", url} {
		if err := b.call(b.session, "Page.navigate", map[string]any{"url": u}, nil); err != nil {
			return err
		}
	}
	return nil
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its value into out (nil: ignore).
func (b *Browser) Eval(expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := b.call(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r); err != nil {
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("evaluate %q: %s", expr, r.Exception.Text)
	}
	if out != nil && len(r.Result.Value) > 0 {
		return json.Unmarshal(r.Result.Value, out)
	}
	return nil
}

// WaitFor polls a JavaScript condition until it is true.
func (b *Browser) WaitFor(cond string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		var ok bool
		err := b.Eval("!!("+cond+")", &ok)
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("still false")
			}
			return fmt.Errorf("waiting for %s: %w", cond, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DOM returns the page's current HTML.
func (b *Browser) DOM() (string, error) {
	var s string
	err := b.Eval("document.documentElement.outerHTML", &s)
	return s, err
}

// URL returns the page's current address.
func (b *Browser) URL() (string, error) {
	var s string
	err := b.Eval("location.href", &s)
	return s, err
}

// Screenshot saves the viewport as a PNG.
func (b *Browser) Screenshot(path string) error {
	var r struct {
		Data string `json:"data"`
	}
	if err := b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &r); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// Type sets a form field's value (by CSS selector).
func (b *Browser) Type(selector, value string) error {
	sel, _ := json.Marshal(selector)
	val, _ := json.Marshal(value)
	return b.Eval(fmt.Sprintf("(() => { const el = document.querySelector(%s); if (!el) throw new Error('no ' + %s); el.value = %s; })()", sel, sel, val), nil)
}

// Click clicks an element (by CSS selector).
func (b *Browser) Click(selector string) error {
	sel, _ := json.Marshal(selector)
	return b.Eval(fmt.Sprintf("(() => { const el = document.querySelector(%s); if (!el) throw new Error('no ' + %s); el.click(); })()", sel, sel), nil)
}

// Close stops Chromium.
func (b *Browser) Close() {
	_ = b.call("", "Browser.close", nil, nil)
	b.w.Close()
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
}

// Contains reports whether the page's HTML contains s.
func (b *Browser) Contains(s string) bool {
	dom, err := b.DOM()
	return err == nil && strings.Contains(dom, s)
}
