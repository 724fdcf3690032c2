package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keel-cloud/keel/fsm"
)

// answerWait is how long, beyond --timeout, `snapshot restore` waits for
// the controllers' answer once the file is uploaded: they store and verify
// it, forward it to the leader, and Raft installs it (up to a minute).
const answerWait = 2 * time.Minute

// progressEvery spaces progress updates.
const progressEvery = 250 * time.Millisecond

// snapshotSave streams a consistent snapshot into FILE.tmp, checks it, syncs
// it and renames it to FILE, so FILE is either complete or untouched.
func (a *app) snapshotSave(args []string) error {
	fs := a.flags("snapshot save", "FILE", "Save a consistent snapshot of the whole cluster state to FILE.\n"+
		"--timeout bounds how long the transfer may stall, not its total duration.")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	file := pos[0]
	c, err := a.newClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	wd := newWatchdog(cancel, c.timeout, stalled(c.timeout))
	defer wd.stop()

	resp, err := c.do(ctx, http.MethodGet, "/internal/v1/snapshot", nil, -1)
	if err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	defer resp.Body.Close()

	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("snapshot save: %w (check that the directory of %s exists and is writable)", err, file)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	p := a.newProgress("saving snapshot", resp.ContentLength)
	body := &countingReader{r: resp.Body, onRead: func(n int) { wd.kick(); p.add(n) }}
	n, err := io.Copy(f, body)
	p.clear()
	wd.stop()
	if err != nil {
		if body.err != nil {
			if ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			return fmt.Errorf("snapshot save: the transfer from %s failed after %d bytes: %v; nothing was written to %s (check the controller and retry)",
				c.base, n, err, file)
		}
		return fmt.Errorf("snapshot save: write %s: %w (is the disk full?)", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("snapshot save: sync %s: %w", tmp, err)
	}
	// An HTTP stream that ends early can look complete (the controller may
	// fail after it has started answering), so check the snapshot's own
	// framing and checksum before keeping it.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	if err := verifySnapshot(f); err != nil {
		return fmt.Errorf("snapshot save: the snapshot received from %s is incomplete or corrupt (%v): the controller may have failed while streaming it (see its log); nothing was written to %s",
			c.base, err, file)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("snapshot save: close %s: %w", tmp, err)
	}
	done = true
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("snapshot save: %w", err)
	}
	syncDir(filepath.Dir(file))
	fmt.Fprintf(a.stderr, "saved %d bytes to %s\n", n, file)
	return nil
}

// verifySnapshot checks a snapshot's framing and checksum with the same
// code the controllers use before restoring one.
func verifySnapshot(r io.Reader) error {
	_, _, err := fsm.VerifySnapshot(r)
	return err
}

// syncDir makes a rename in dir durable, as far as the platform allows.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}

// snapshotRestore uploads FILE; the controllers verify it and replace the
// whole cluster state with it.
func (a *app) snapshotRestore(args []string) error {
	fs := a.flags("snapshot restore", "FILE", "Replace THE WHOLE CLUSTER STATE with the snapshot in FILE (made by `keelctl snapshot save`).\n"+
		"Everything written since that snapshot is lost. No confirmation is asked.\n"+
		"The controllers verify the file first: a damaged file changes nothing.")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	file := pos[0]
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return fmt.Errorf("snapshot restore: %s is not a snapshot file (empty or not a regular file); make one with `keelctl snapshot save`", file)
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	wd := newWatchdog(cancel, c.timeout, stalled(c.timeout))
	defer wd.stop()

	size := st.Size()
	p := a.newProgress("uploading snapshot", size)
	var once sync.Once
	uploaded := func() {
		once.Do(func() {
			p.clear()
			wait := c.timeout + answerWait
			wd.arm(wait, fmt.Errorf("no answer %s after the upload ended (the restore may still complete: check `keelctl cluster status` and the controllers' logs)", wait))
		})
	}
	body := &countingReader{r: f, limit: size, onEnd: uploaded, onRead: func(n int) {
		wd.kick()
		p.add(n)
	}}
	resp, err := c.do(ctx, http.MethodPost, "/internal/v1/snapshot", body, size)
	p.clear()
	if err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	wd.stop()
	if err != nil {
		return fmt.Errorf("snapshot restore: %w", c.unreachable(ctx, err))
	}
	var out struct {
		RestoredKeys *int64  `json:"restored_keys"`
		AppliedIndex *uint64 `json:"applied_index"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.RestoredKeys == nil {
		return fmt.Errorf("snapshot restore: the controller at %s answered 200 but not with a restore result (%q); check `keelctl cluster status`", c.base, raw)
	}
	applied := "unknown"
	if out.AppliedIndex != nil {
		applied = fmt.Sprint(*out.AppliedIndex)
	}
	fmt.Fprintf(a.stdout, "restored %d keys from %s: the whole cluster state was replaced (applied index %s)\n", *out.RestoredKeys, file, applied)
	return nil
}

func stalled(d time.Duration) error {
	return fmt.Errorf("the transfer stalled: nothing moved for %s (raise --timeout if the controller or the network is just slow)", d)
}

// countingReader reports every read, and the end of the stream: EOF, or
// limit bytes read when limit > 0.
type countingReader struct {
	r      io.Reader
	onRead func(n int)
	onEnd  func()
	limit  int64

	n   int64
	err error // the last read error other than io.EOF
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if n > 0 && c.onRead != nil {
		c.onRead(n)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = err
	}
	if c.onEnd != nil && (errors.Is(err, io.EOF) || (c.limit > 0 && c.n >= c.limit)) {
		c.onEnd()
	}
	return n, err
}

// watchdog cancels a context when it is not kicked for a while.
type watchdog struct {
	mu     sync.Mutex
	t      *time.Timer
	d      time.Duration
	cause  error
	cancel context.CancelCauseFunc
}

func newWatchdog(cancel context.CancelCauseFunc, d time.Duration, cause error) *watchdog {
	w := &watchdog{d: d, cause: cause, cancel: cancel}
	w.t = time.AfterFunc(d, w.fire)
	return w
}

func (w *watchdog) fire() {
	w.mu.Lock()
	cause := w.cause
	w.mu.Unlock()
	w.cancel(cause)
}

// kick restarts the countdown.
func (w *watchdog) kick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Reset(w.d)
}

// arm restarts the countdown with a new duration and cause.
func (w *watchdog) arm(d time.Duration, cause error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d, w.cause = d, cause
	w.t.Reset(d)
}

func (w *watchdog) stop() { w.t.Stop() }

// progress shows bytes transferred on stderr, if it is a terminal, a few
// times per second, on one line that it rewrites.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	what  string
	total int64 // < 0: unknown
	n     int64
	last  time.Time
	shown bool
}

func (a *app) newProgress(what string, total int64) *progress {
	return &progress{w: a.stderr, on: a.progress, what: what, total: total, last: time.Now()}
}

func (p *progress) add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += int64(n)
	if !p.on || time.Since(p.last) < progressEvery {
		return
	}
	p.last = time.Now()
	line := fmt.Sprintf("%s: %s", p.what, humanBytes(p.n))
	if p.total > 0 {
		line += fmt.Sprintf(" of %s (%d%%)", humanBytes(p.total), p.n*100/p.total)
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
	p.shown = true
}

// clear erases the progress line, if one is shown.
func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
	p.on = false
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
