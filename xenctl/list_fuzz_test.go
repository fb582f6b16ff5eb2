package xenctl

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseList checks that ParseList never panics, that its errors wrap
// ErrListFormat, and that a text it accepts formats back to itself (cut at
// the first NUL, with a final newline added if missing) and parses again to
// a list that formats the same.
func FuzzParseList(f *testing.F) {
	for _, text := range listFixtures(f) {
		f.Add(text)
	}
	f.Add(listBuildText(2, 3))
	f.Add([]byte("T\n" + listC0 + listG + listP0 + "S=SI:0,PT:E\n"))
	f.Add([]byte("T=Gn:1,Gt:2,Gx:-3,Gm:4,Zn:1\x00junk"))
	f.Fuzz(func(t *testing.T, text []byte) {
		l, err := ParseList(text)
		if err != nil {
			if !errors.Is(err, ErrListFormat) {
				t.Fatalf("error does not wrap ErrListFormat: %v", err)
			}
			return
		}
		want := text
		if i := bytes.IndexByte(want, 0); i >= 0 {
			want = want[:i]
		}
		if len(want) > 0 && want[len(want)-1] != '\n' {
			want = append(bytes.Clone(want), '\n')
		}
		out := l.Format()
		if !bytes.Equal(out, want) {
			t.Fatalf("Format differs from the input\ninput:  %q\nformat: %q", want, out)
		}
		l2, err := ParseList(out)
		if err != nil {
			t.Fatalf("formatted text does not parse: %v\ntext: %q", err, out)
		}
		if out2 := l2.Format(); !bytes.Equal(out2, out) {
			t.Fatalf("format, parse, format is not stable\nfirst:  %q\nsecond: %q", out, out2)
		}
	})
}
