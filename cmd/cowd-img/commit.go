package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/xentmem/xentmem/cowd"
)

// progress renders commit progress: a redrawn bar on a terminal, a plain
// line per 10 % otherwise (logs, pipes).
type progress struct {
	w        io.Writer
	terminal bool
	lastPct  int
	lastDraw time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, lastPct: -1}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) update(done, total int64) {
	pct := 100
	if total > 0 {
		pct = int(done * 100 / total)
	}
	if p.terminal {
		if pct == p.lastPct || (time.Since(p.lastDraw) < 100*time.Millisecond && done != total) {
			return
		}
		const width = 40
		bar := strings.Repeat("#", pct*width/100) + strings.Repeat("-", width-pct*width/100)
		fmt.Fprintf(p.w, "\r    (%3d%%) [%s] %s/%s", pct, bar, humanSize(done), humanSize(total))
		p.lastPct, p.lastDraw = pct, time.Now()
		return
	}
	if pct/10 != p.lastPct/10 || p.lastPct < 0 {
		fmt.Fprintf(p.w, "commit: %d%% (%d of %d bytes)\n", pct, done, total)
		p.lastPct = pct
	}
}

func (p *progress) finish() {
	if p.terminal && p.lastPct >= 0 {
		fmt.Fprintln(p.w)
	}
}

func cmdCommit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("commit", "IMAGE", stderr)
	quiet := fs.Bool("q", false, "no progress output")
	if code := parse(fs, args, 1, 1); code >= 0 {
		return code
	}
	var fn func(done, total int64)
	var p *progress
	if !*quiet {
		p = newProgress(stderr)
		fn = p.update
	}
	commit := cowd.Commit
	if isQcow2(fs.Arg(0)) {
		commit = commitQcow2 // qcow2.go
	}
	err := commit(ctx, fs.Arg(0), fn)
	if p != nil {
		p.finish()
	}
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, "Image committed.")
	return 0
}
