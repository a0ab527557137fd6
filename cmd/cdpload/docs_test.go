package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	mdFence   = regexp.MustCompile("(?ms)^```.*?^```")
)

// anchor is the fragment GitHub gives a heading: lower case, punctuation dropped, spaces
// as dashes.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Every relative link of the README and docs/ leads to a file that exists and, with a
// fragment, to a heading in it: the documentation's pages cannot lose each other.
func TestDocsLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join(root, "README.md"))
	if len(pages) < 9 {
		t.Fatalf("docs/ holds %d pages", len(pages)-1)
	}
	anchors := map[string]map[string]bool{}
	headings := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		a := map[string]bool{}
		for _, m := range mdHeading.FindAllStringSubmatch(mdFence.ReplaceAllString(string(raw), ""), -1) {
			a[anchor(m[1])] = true
		}
		anchors[path] = a
		return a
	}
	for _, page := range pages {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(mdFence.ReplaceAllString(string(raw), ""), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s: a link to %s: %v", page, target, err)
				continue
			}
			if frag != "" && !headings(path)[frag] {
				t.Errorf("%s: a link to %s: no such heading in %s", page, target, path)
			}
		}
	}
}

// readmeExitCodes reads the codes of the table under the README's "## Exit codes": the
// first cell of each row, one code or several separated by commas.
func readmeExitCodes(t *testing.T) map[int32]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Exit codes\n")
	if !ok {
		t.Fatal("README.md has no section ## Exit codes")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	codes := map[int32]string{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cell := strings.TrimSpace(strings.Split(line, "|")[1])
		if cell == "code" || strings.Trim(cell, "-: ") == "" {
			continue // the header and its rule
		}
		for _, c := range strings.Split(cell, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(c), 10, 32)
			if err != nil {
				t.Errorf("README.md, exit codes table: the row %q does not start with exit codes", line)
				continue
			}
			if _, dup := codes[int32(n)]; dup {
				t.Errorf("README.md, exit codes table: exit %d has two rows", n)
			}
			codes[int32(n)] = line
		}
	}
	if len(codes) == 0 {
		t.Fatal("README.md: no table under ## Exit codes")
	}
	return codes
}

// helpExitCodes reads the codes of the "Exit codes:" paragraph that ends a command's --help:
// entries separated by semicolons, each starting with its code, or codes as 130/143.
func helpExitCodes(t *testing.T, cmd, help string) map[int32]bool {
	t.Helper()
	_, text, ok := strings.Cut(help, "\nExit codes: ")
	if !ok {
		t.Fatalf("cdpload %s --help has no \"Exit codes:\" paragraph:\n%s", cmd, help)
	}
	codes := map[int32]bool{}
	for _, entry := range strings.Split(strings.Join(strings.Fields(text), " "), ";") {
		first, _, _ := strings.Cut(strings.TrimSpace(entry), " ")
		for _, c := range strings.Split(first, "/") {
			n, err := strconv.ParseInt(c, 10, 32)
			if err != nil {
				t.Errorf("cdpload %s --help, exit codes: %q does not start with its code", cmd, entry)
				break
			}
			codes[int32(n)] = true
		}
	}
	return codes
}

// The README's exit codes table, each command's --help and `cdpload help` list exactly the
// exit codes main.go defines: a scheduler configured from the docs knows every code the
// command can end with, and no code it cannot.
func TestDocsExitCodes(t *testing.T) {
	codes := exitCodes(t) // every exit* constant of main.go
	readme := readmeExitCodes(t)
	for code, name := range codes {
		if _, ok := readme[code]; !ok {
			t.Errorf("README.md, exit codes table: no row for exit %d (%s in main.go)", code, name)
		}
	}
	for code, row := range readme {
		if _, ok := codes[code]; !ok {
			t.Errorf("README.md, exit codes table: exit %d is not a code of main.go: %s", code, row)
		}
	}

	help := func(args ...string) string {
		var out, errb bytes.Buffer
		if err := run(args, proc{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}); err != nil {
			t.Fatalf("cdpload %s: %v", strings.Join(args, " "), err)
		}
		return out.String() + errb.String()
	}
	for _, cmd := range []string{"load", "validate", "diff"} {
		listed := helpExitCodes(t, cmd, help(cmd, "--help"))
		for code, name := range codes {
			if !listed[code] {
				t.Errorf("cdpload %s --help, exit codes: no exit %d (%s in main.go)", cmd, code, name)
			}
		}
		for code := range listed {
			if _, ok := codes[code]; !ok {
				t.Errorf("cdpload %s --help, exit codes: exit %d is not a code of main.go", cmd, code)
			}
		}
	}
	_, usage, ok := strings.Cut(help("help"), "\nExit codes:\n")
	if !ok {
		t.Fatal("cdpload help has no \"Exit codes:\" list")
	}
	for code, name := range codes {
		if !regexp.MustCompile(`(^|\D)` + strconv.Itoa(int(code)) + `(\D|$)`).MatchString(usage) {
			t.Errorf("cdpload help, exit codes: no exit %d (%s in main.go)", code, name)
		}
	}
}

// forcedBar is a command line or environment that forces the progress bar.
var forcedBar = regexp.MustCompile(`--?progress(=|\s+)["']?bar\b|CDPLOAD_PROGRESS=["']?bar\b`)

// make demo leaves --progress to auto: a bar on a terminal, log lines when its output is
// piped or captured, which a forced bar would fill with escape codes.
func TestDemoLeavesProgressToAuto(t *testing.T) {
	root := filepath.Join("..", "..")
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	// The demo target's recipe: the lines after "demo:" that start with a tab.
	var recipe []string
	lines := strings.Split(string(makefile), "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, "demo:") {
			continue
		}
		for _, l := range lines[i+1:] {
			if !strings.HasPrefix(l, "\t") {
				break
			}
			recipe = append(recipe, l)
		}
	}
	if !slices.ContainsFunc(recipe, func(l string) bool { return strings.Contains(l, "scripts/demo.sh") }) {
		t.Fatalf("the Makefile's demo target does not run scripts/demo.sh: %q", recipe)
	}
	script, err := os.ReadFile(filepath.Join(root, "scripts", "demo.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"the Makefile's demo target": strings.Join(recipe, "\n"), "scripts/demo.sh": string(script)} {
		for _, m := range forcedBar.FindAllString(text, -1) {
			t.Errorf("%s forces the progress bar (%s): leave --progress to auto, or give none or log", what, m)
		}
	}
}
