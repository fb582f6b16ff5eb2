package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// table lays out rows of cells in columns: text columns left-aligned,
// numeric ones right-aligned, two spaces apart, no trailing blanks.
type table struct {
	head  []string
	right []bool // per column: align right
	rows  [][]string
}

// newTable takes the column headers; a header starting with '>' is
// right-aligned (the '>' is not printed).
func newTable(head ...string) *table {
	t := &table{}
	for _, h := range head {
		r := strings.HasPrefix(h, ">")
		t.head = append(t.head, strings.TrimPrefix(h, ">"))
		t.right = append(t.right, r)
	}
	return t
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// lines returns the header and the rows, laid out.
func (t *table) lines() []string {
	w := make([]int, len(t.head))
	for i, h := range t.head {
		w[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(w) {
				w[i] = max(w[i], utf8.RuneCountInString(c))
			}
		}
	}
	out := make([]string, 0, len(t.rows)+1)
	for _, r := range append([][]string{t.head}, t.rows...) {
		var b strings.Builder
		for i, c := range r {
			if i >= len(w) {
				break
			}
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", w[i]-utf8.RuneCountInString(c))
			if t.right[i] {
				b.WriteString(pad + c)
			} else {
				b.WriteString(c + pad)
			}
		}
		out = append(out, strings.TrimRight(b.String(), " "))
	}
	return out
}

func (t *table) write(w io.Writer) error {
	for _, l := range t.lines() {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	return nil
}

// fmtMiB formats MiB with one decimal.
func fmtMiB(m float64) string { return fmt.Sprintf("%.1f", m) }

// fmtRatio formats a ratio as a percentage, "-" when there is none.
func fmtRatio(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *r*100)
}

// fmtRate formats a per-second rate.
func fmtRate(r float64) string { return fmt.Sprintf("%.1f", r) }

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
