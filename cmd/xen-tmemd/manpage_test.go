package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

const manPage = "../../docs/xen-tmemd.8"

// TestManPage: docs/xen-tmemd.8 documents every flag main.go defines and
// every section an administrator looks for, and groff renders it without
// a warning.
func TestManPage(t *testing.T) {
	b, err := os.ReadFile(manPage)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	var usage bytes.Buffer
	if _, err := parseFlags([]string{"--help"}, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	flags := regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(usage.String(), -1)
	if len(flags) < 10 {
		t.Fatalf("found %d flags in the usage:\n%s", len(flags), usage.String())
	}
	for _, f := range flags {
		if roff := `\-\-` + strings.ReplaceAll(f[1], "-", `\-`); !strings.Contains(page, roff) {
			t.Errorf("flag --%s is not in %s", f[1], manPage)
		}
	}
	for _, sec := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "CONFIGURATION FILE", "SIGNALS", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"} {
		if !strings.Contains(page, "\n.SH "+sec+"\n") {
			t.Errorf("no section %s", sec)
		}
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Log("groff not installed: rendering not checked")
		return
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", manPage)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}
