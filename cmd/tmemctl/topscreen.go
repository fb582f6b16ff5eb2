package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// terminal is tmem-top's full screen: stdin for keys (in raw mode), stdout
// for ANSI output.
type terminal struct {
	in, out *os.File
}

// openTerminal returns the terminal when both stdin and stdout are one,
// else nil.
func openTerminal(in io.Reader, out io.Writer) *terminal {
	fi, ok := in.(*os.File)
	fo, ok2 := out.(*os.File)
	if !ok || !ok2 || !term.IsTerminal(int(fi.Fd())) || !term.IsTerminal(int(fo.Fd())) {
		return nil
	}
	return &terminal{in: fi, out: fo}
}

// size returns the terminal's columns and rows (80×24 if unknown).
func (t *terminal) size() (int, int) {
	w, h, err := term.GetSize(int(t.out.Fd()))
	if err != nil || w <= 0 || h <= 0 {
		return 80, 24
	}
	return w, h
}

// ANSI sequences.
const (
	ansiAltScreen = "\x1b[?1049h\x1b[?25l" // alternate screen, cursor hidden
	ansiMainScr   = "\x1b[?25h\x1b[?1049l"
	ansiHome      = "\x1b[H"
	ansiClearEOL  = "\x1b[K"
	ansiReverse   = "\x1b[7m"
	ansiBold      = "\x1b[1m"
	ansiReset     = "\x1b[0m"
)

// topUI is the state of the full screen.
type topUI struct {
	prev, cur *sample
	sort      sortKey
	delay     time.Duration
	prompt    bool   // reading a new delay after 'd'
	input     string // the delay typed so far
	msg       string // an error or a note, shown under the header
}

// topScreen runs the full-screen view until q, Ctrl-C, ctx or -n.
func topScreen(ctx context.Context, t *terminal, be backend, first *sample, o topOptions) error {
	fd := int(t.in.Fd())
	state, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	io.WriteString(t.out, ansiAltScreen)
	defer func() {
		io.WriteString(t.out, ansiMainScr)
		term.Restore(fd, state)
	}()
	keys := make(chan byte, 64)
	go readKeys(t.in, keys) // blocks in Read until the process exits

	ui := &topUI{cur: first, sort: o.sort, delay: o.delay}
	refreshes := 1
	w, h := t.size()
	draw := func() {
		w, h = t.size()
		io.WriteString(t.out, render(ui.lines(w, h), w, h))
	}
	draw()
	if o.n == 1 {
		return nil
	}
	tick := time.NewTimer(ui.delay)
	defer tick.Stop()
	resize := time.NewTicker(250 * time.Millisecond)
	defer resize.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case k, ok := <-keys:
			if !ok {
				return nil // stdin closed
			}
			quit, retime := ui.key(k)
			if quit {
				return nil
			}
			if retime {
				tick.Reset(ui.delay)
			}
			draw()
		case <-tick.C:
			s, err := fetchSample(ctx, be)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				ui.msg = "error: " + errorLine(err)
			} else {
				ui.prev, ui.cur, ui.msg = ui.cur, s, ""
				refreshes++
			}
			draw()
			if o.n > 0 && refreshes >= o.n {
				return nil
			}
			tick.Reset(ui.delay)
		case <-resize.C:
			if nw, nh := t.size(); nw != w || nh != h {
				draw()
			}
		}
	}
}

func readKeys(r io.Reader, keys chan<- byte) {
	defer close(keys)
	var b [64]byte
	for {
		n, err := r.Read(b[:])
		for _, c := range b[:n] {
			keys <- c
		}
		if err != nil {
			return
		}
	}
}

// Keys.
const (
	keyCtrlC     = 0x03
	keyBackspace = 0x08
	keyEnter     = '\r'
	keyNewline   = '\n'
	keyEsc       = 0x1b
	keyDelete    = 0x7f
)

// key handles one key; it reports whether to quit and whether the refresh
// timer must restart (the delay changed).
func (ui *topUI) key(k byte) (quit, retime bool) {
	if k == keyCtrlC {
		return true, false
	}
	if ui.prompt {
		switch {
		case k >= '0' && k <= '9' || k == '.':
			if len(ui.input) < 12 {
				ui.input += string(k)
			}
		case k == keyBackspace || k == keyDelete:
			if ui.input != "" {
				ui.input = ui.input[:len(ui.input)-1]
			}
		case k == keyEnter || k == keyNewline:
			ui.prompt = false
			d, err := parseDelay(ui.input)
			if err != nil {
				ui.msg = fmt.Sprintf("delay %q: want seconds from 0.1 to 86400", ui.input)
				return false, false
			}
			ui.delay, ui.msg = d, ""
			return false, true
		case k == keyEsc:
			ui.prompt = false
		}
		return false, false
	}
	switch k {
	case 'q', 'Q':
		return true, false
	case 's':
		ui.sort = ui.sort.next()
	case 'd':
		ui.prompt, ui.input = true, ""
	}
	return false, false
}

// lines returns the screen's lines (without escapes except the header's),
// fitted to h rows: header, a message line, the table, and the key help at
// the bottom.
func (ui *topUI) lines(w, h int) []string {
	f := buildFrame(ui.prev, ui.cur, ui.sort)
	out := frameHeader(f)
	out = append(out, ui.msg)
	tbl := frameTable(f).lines()
	out = append(out, ansiReverse+pad(tbl[0], w)+ansiReset)
	room := h - len(out) - 1
	for i, l := range tbl[1:] {
		if i >= room {
			break
		}
		out = append(out, l)
	}
	for len(out) < h-1 {
		out = append(out, "")
	}
	footer := fmt.Sprintf("q quit  s sort (pages, hits, puts, name)  d delay (%ss)", strconv.FormatFloat(ui.delay.Seconds(), 'f', -1, 64))
	if ui.prompt {
		footer = "delay in seconds (Enter to apply, Esc to cancel): " + ui.input
	}
	return append(out, ansiBold+truncate(footer, w)+ansiReset)
}

// render draws lines from the top left, clearing the rest of each line;
// lines with escapes are drawn as they are, the others cut to w columns.
func render(lines []string, w, h int) string {
	var b strings.Builder
	b.WriteString(ansiHome)
	for i := 0; i < h && i < len(lines); i++ {
		l := lines[i]
		if !strings.Contains(l, "\x1b") {
			l = truncate(l, w)
		}
		b.WriteString(l)
		b.WriteString(ansiClearEOL)
		if i < h-1 {
			b.WriteString("\r\n")
		}
	}
	return b.String()
}

// truncate cuts s to w runes.
func truncate(s string, w int) string {
	if utf8.RuneCountInString(s) <= w {
		return s
	}
	return string([]rune(s)[:max(w, 0)])
}

// pad fills s with blanks to w runes, or cuts it.
func pad(s string, w int) string {
	s = truncate(s, w)
	return s + strings.Repeat(" ", w-utf8.RuneCountInString(s))
}
