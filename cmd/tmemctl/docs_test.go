package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// docsDir is the repository's docs/ directory.
var docsDir = filepath.Join("..", "..", "docs")

// TestManPage checks that tmemctl(8) covers every command and exit status,
// and (when groff is installed) that it renders without warnings.
func TestManPage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(docsDir, "tmemctl.8"))
	if err != nil {
		t.Fatal(err)
	}
	man := strings.ReplaceAll(string(b), `\-`, "-")
	for _, c := range commands() {
		if !c.hidden && !strings.Contains(man, ".SS "+c.name) {
			t.Errorf("tmemctl.8 has no section for %s", c.name)
		}
	}
	for code := exitOK; code <= exitDenied; code++ {
		if !strings.Contains(man, fmt.Sprintf(".TP\n.B %d\n", code)) {
			t.Errorf("tmemctl.8 does not document exit status %d", code)
		}
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Log("groff not installed: rendering not checked")
		return
	}
	out, err := exec.Command(groff, "-man", "-ww", "-z", filepath.Join(docsDir, "tmemctl.8")).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}

// TestJSONDocumented checks that docs/tmemctl-json.md names every field
// of the JSON tmemctl prints.
func TestJSONDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(docsDir, "tmemctl-json.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, v := range []any{listJSON{}, globalJSON{}, poolStatsJSON{}, poolJSON{}, sharedJSON{}, domainJSON{},
		topJSON{}, topMemoryJSON{}, topTmemJSON{}, topDomainJSON{},
		freeableResult{}, flushResult{}, sharedAuthResult{}, poolCreateResult{}, reserveResult{}} {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous || name == "" {
				continue
			}
			if !strings.Contains(doc, "`"+name+"`") && !strings.Contains(doc, `"`+name+`"`) &&
				!strings.Contains(doc, "."+name+"`") && !strings.Contains(doc, "`"+name+",") {
				t.Errorf("%s.%s (%q) is not in docs/tmemctl-json.md", rt.Name(), f.Name, name)
			}
		}
	}
	for _, s := range []string{listSchema, topSchema} {
		if !strings.Contains(doc, s) {
			t.Errorf("schema %s not documented", s)
		}
	}
}

// completeBash runs the bash completion for words (the last one is being
// completed) and returns the candidates. path is prepended to PATH.
func completeBash(t *testing.T, path string, words ...string) []string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	script := fmt.Sprintf(`source %q
COMP_WORDS=(%s); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _tmemctl; printf '%%s\n' "${COMPREPLY[@]}"`,
		filepath.Join(docsDir, "completion", "tmemctl.bash"), quoteWords(words))
	cmd := exec.Command(bash, "--norc", "-c", script)
	if path != "" {
		cmd.Env = append(os.Environ(), "PATH="+path+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

func quoteWords(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func TestBashCompletion(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"tmemctl", "tmem-l"}, "tmem-list"},
		{[]string{"tmemctl", "--socket", "/x", "tmem-sh"}, "tmem-shared-auth"},
		{[]string{"tmemctl", "tmem-list", "-o", ""}, "text table json"},
		{[]string{"tmemctl", "tmem-top", "-o", ""}, "table json"},
		{[]string{"tmemctl", "tmem-top", "-s", ""}, "pages hits puts name"},
		{[]string{"tmemctl", "tmem-set", "1", "-p", ""}, "0 1"},
		{[]string{"tmemctl", "tmem-shared-auth", "-A", ""}, "0 1"},
		{[]string{"tmem-list", "-o", "t"}, "text table"},
		{[]string{"tmemctl", "tmem-flush", "--"}, "--mib --help --socket --direct --privcmd"},
		{[]string{"tmemctl", "help", "tmem-f"}, "tmem-freeze tmem-freeable tmem-flush"},
	} {
		if got := strings.Join(completeBash(t, "", tc.words...), " "); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.words, got, tc.want)
		}
	}
}

// TestZshCompletionSyntax parses the zsh completion (when zsh is
// installed); TestDaemonEndToEnd exercises domain completion through bash.
func TestZshCompletionSyntax(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh not installed")
	}
	if out, err := exec.Command(zsh, "-n", filepath.Join(docsDir, "completion", "_tmemctl")).CombinedOutput(); err != nil {
		t.Errorf("zsh -n: %v\n%s", err, out)
	}
}
