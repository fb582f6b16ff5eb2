package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// goldenVersions are the Xen releases the transcripts cover: one per tmem
// control generation (A1, B, C, D) and one without tmem.
var goldenVersions = []string{"4.1.0", "4.6.0", "4.8.0", "4.12.4", "4.17.0"}

// script is every command in every form, in an order whose effects show in
// the listings that follow. $TMP is the scenario's temporary directory.
var script = [][]string{
	{"tmem-list", "-a"},
	{"tmem-list", "-l", "-a"},
	{"tmem-list", "-l", "1"},
	{"tmem-list", "dom2", "-l"}, // options after the domain, as GNU getopt allows
	{"tmem-list", "-a", "Domain-0"},
	{"tmem-list", "-a", "-o", "table"},
	{"tmem-list", "-o", "json", "-a"},
	{"tmem-list", "-o", "table", "3"},
	{"tmem-list", "-o", "json", "4"}, // a domain that never used tmem
	{"tmem-list", "99"},
	{"tmem-list", "web1"},
	{"tmem-freeable"},
	{"tmem-freeable", "-o", "json"},
	{"tmem-freeze", "1"},
	{"tmem-list", "1"},
	{"tmem-thaw", "1"},
	{"tmem-freeze", "-a"},
	{"tmem-list", "-a"},
	{"tmem-thaw", "-a"},
	{"tmem-freeze", "4"},
	{"tmem-destroy", "2"},
	{"tmem-destroy", "-q", "-a"},
	{"tmem-set", "1", "-w", "7", "-p", "1"},
	{"tmem-set", "2", "-c", "5"},
	{"tmem-set", "-a", "-w", "3"},
	{"tmem-list", "-a"},
	{"tmem-set", "-a", "-p", "0", "-c", "9"},
	{"tmem-list", "-a"},
	{"tmem-set", "99", "-w", "1"},
	{"tmem-shared-auth", "1", "-u", "00112233-4455-6677-8899-aabbccddeeff", "-A", "1", "-o", "json"},
	{"tmem-pool-create", "1", "--ephemeral"},
	{"tmem-pool-create", "1", "--persistent", "-o", "json"},
	{"tmem-pool-create", "1", "--ephemeral", "--shared", "--uuid", "00112233-4455-6677-8899-aabbccddeeff"},
	{"tmem-shared-auth", "1", "-u", "00112233-4455-6677-8899-aabbccddeeff", "-A", "0"},
	{"tmem-pool-create", "2", "--ephemeral", "--shared", "--uuid", "00112233-4455-6677-8899-aabbccddeef0"},
	{"tmem-shared-auth", "-a", "-u", "00112233-4455-6677-8899-aabbccddeeff", "-A", "1"},
	{"tmem-list", "-l", "1"},
	{"tmem-flush", "-a", "--mib", "1"},
	{"tmem-flush", "-a", "-p", "16", "-o", "json"},
	{"tmem-flush", "-a"},
	{"tmem-flush", "1", "-p", "16"},
	{"tmem-save", "3", "$TMP/dom3.tmem"},
	{"tmem-save", "3", "$TMP/dom3.tmem"},
	{"tmem-flush", "-a", "--mib", "12"}, // room for the persistent pages
	{"tmem-restore", "4", "$TMP/dom3.tmem"},
	{"tmem-restore", "4", "$TMP/missing.tmem"},
	{"tmem-list", "-l", "4"},
	{"tmem-pool-create", "4", "--ephemeral"},
	{"tmem-set", "-a", "-p", "0"},
	{"tmem-top", "-b", "-n", "3", "-d", "1"},
	{"tmem-top", "-b", "-n", "2", "-d", "0.5", "-s", "name", "-o", "json"},
	{"tmem-top", "-b", "-n", "2", "-s", "hits"},
	{"_domains"},
}

// transcript runs the script against a fresh scenario.
func transcript(t *testing.T, version, mode string) string {
	s := newScenario(t, version)
	var b strings.Builder
	for _, args := range script {
		a := make([]string, len(args))
		for i, x := range args {
			a[i] = strings.ReplaceAll(x, "$TMP", s.tmp)
		}
		r := s.run(t, mode, a...)
		writeStep(&b, args, r, s.tmp)
	}
	return b.String()
}

// writeStep appends one command and what it did to a transcript.
func writeStep(b *strings.Builder, args []string, r result, tmp string) {
	fmt.Fprintf(b, "$ tmemctl %s\n", strings.Join(args, " "))
	out := strings.ReplaceAll(r.stdout, tmp, "$TMP")
	b.WriteString(out)
	if out != "" && !strings.HasSuffix(out, "\n") {
		b.WriteString("\n\\ no newline at end of output\n")
	}
	for _, l := range strings.Split(strings.TrimSuffix(strings.ReplaceAll(r.stderr, tmp, "$TMP"), "\n"), "\n") {
		if l != "" {
			fmt.Fprintf(b, "stderr: %s\n", l)
		}
	}
	fmt.Fprintf(b, "[exit %d]\n\n", r.code)
}

// TestGoldenTranscripts runs every command and form against each Xen
// release, through both backends, and pins the output. Both backends must
// print exactly the same.
func TestGoldenTranscripts(t *testing.T) {
	for _, v := range goldenVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			direct := transcript(t, v, modeDirect)
			daemon := transcript(t, v, modePipe)
			if diff := cmp.Diff(direct, daemon); diff != "" {
				t.Errorf("direct and daemon backends differ (-direct +daemon):\n%s", diff)
			}
			golden(t, "xen-"+v+".golden", direct)
		})
	}
}
