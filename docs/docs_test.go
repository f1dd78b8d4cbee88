package docs

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// idRE is a behaviour ID as the code and the documents cite it.
var idRE = regexp.MustCompile(`\b[FB][0-9]{1,2}\b`)

// entryRE is the start of a catalogue entry: a line that begins with the
// ID in bold, "**F19** text".
var entryRE = regexp.MustCompile(`^\*\*([FB][0-9]{1,2})\*\*(.*)$`)

// refRE is a backticked name in an entry: a test function or a file.
var refRE = regexp.MustCompile("`([^`\\s]+)`")

var testFuncRE = regexp.MustCompile(`^(Test|Fuzz|Benchmark|Example)\w*$`)

// scanned are the extensions of the text files whose citations count.
var scanned = map[string]bool{
	".go": true, ".md": true, ".txt": true, ".xml": true, ".js": true, ".mjs": true,
	".toml": true, ".html": true, ".json": true, ".sh": true, ".yaml": true, ".yml": true,
	".conf": true, ".csv": true,
}

// skipped directories hold text that is not ours (RFC 4475's torture
// messages) or generated (fuzz corpora), where a token such as "F1" is no
// citation.
func skipped(rel string, d fs.DirEntry) bool {
	name := d.Name()
	switch {
	case name == ".git", name == "node_modules":
		return true
	case rel == "test-output", rel == "data": // written by tests and the server while this runs (.gitignore)
		return true
	case name == "fuzz" && filepath.Base(filepath.Dir(rel)) == "testdata":
		return true
	case name == "rfc4475":
		return true
	}
	return false
}

type entry struct {
	id   string
	line int
	text []string // the entry's lines, the bold ID removed
}

// readCatalogue parses features.md into its entries, in order.
func readCatalogue(t *testing.T) []entry {
	t.Helper()
	b, err := os.ReadFile("features.md")
	if err != nil {
		t.Fatalf("the feature catalogue: %v", err)
	}
	var entries []entry
	var cur *entry
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := entryRE.FindStringSubmatch(line); m != nil {
			entries = append(entries, entry{id: m[1], line: n})
			cur = &entries[len(entries)-1]
			if s := strings.TrimSpace(m[2]); s != "" {
				cur.text = append(cur.text, s)
			}
			continue
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			cur = nil
			continue
		}
		if cur != nil {
			cur.text = append(cur.text, strings.TrimSpace(line))
		}
	}
	return entries
}

type citation struct {
	file string
	line int
}

// repo walks the repository (the parent of this folder) and returns where
// each ID is first cited, the test functions declared, and the base names
// of the files under testdata folders.
func repo(t *testing.T) (cited map[string]citation, funcs, testdata map[string]bool) {
	t.Helper()
	cited = map[string]citation{}
	funcs = map[string]bool{}
	testdata = map[string]bool{}
	funcRE := regexp.MustCompile(`^func ((?:Test|Fuzz|Benchmark|Example)\w*)\(`)
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a temporary file of a test running beside this one
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if path != root && skipped(rel, d) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.Contains("/"+rel, "/testdata/") {
			testdata[d.Name()] = true
		}
		if !scanned[filepath.Ext(rel)] {
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, id := range idRE.FindAllString(line, -1) {
				if _, ok := cited[id]; !ok {
					cited[id] = citation{rel, i + 1}
				}
			}
			if strings.HasSuffix(rel, "_test.go") {
				if m := funcRE.FindStringSubmatch(line); m != nil {
					funcs[m[1]] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cited, funcs, testdata
}

// idLess orders F before B, then by number.
func idLess(a, b string) int {
	if a[0] != b[0] {
		if a[0] == 'F' {
			return -1
		}
		return 1
	}
	x, _ := strconv.Atoi(a[1:])
	y, _ := strconv.Atoi(b[1:])
	return x - y
}

// TestCatalogue: every behaviour ID cited in the Go code, the test data and
// the documents has an entry in features.md; every entry has text, says
// which tests prove it (or that it is not built yet), and the tests and
// scenario files it names exist; the IDs of each letter run from 1 without
// a gap, each once.
func TestCatalogue(t *testing.T) {
	entries := readCatalogue(t)
	if len(entries) == 0 {
		t.Fatal("features.md has no entries (lines starting **F1** ...)")
	}
	cited, funcs, testdata := repo(t)

	listed := map[string]int{}
	for _, e := range entries {
		if prev, ok := listed[e.id]; ok {
			t.Errorf("features.md:%d: %s listed again (first at line %d)", e.line, e.id, prev)
			continue
		}
		listed[e.id] = e.line
		body := strings.Join(e.text, " ")
		what, tests, hasTests := strings.Cut(body, "Tests:")
		if len(strings.Fields(what)) < 3 {
			t.Errorf("features.md:%d: %s has no text saying what the behaviour is", e.line, e.id)
		}
		if !hasTests && !strings.Contains(strings.ToLower(body), "not built yet") {
			t.Errorf("features.md:%d: %s names no tests (\"Tests: ...\") and does not say it is not built yet", e.line, e.id)
		}
		if hasTests {
			refs := refRE.FindAllStringSubmatch(tests, -1)
			if len(refs) == 0 {
				t.Errorf("features.md:%d: %s: \"Tests:\" names nothing in backticks", e.line, e.id)
			}
			for _, r := range refs {
				name := r[1]
				switch {
				case testFuncRE.MatchString(name):
					if !funcs[name] {
						t.Errorf("features.md:%d: %s names %s, which no _test.go file declares", e.line, e.id, name)
					}
				case strings.Contains(name, "."):
					if !testdata[filepath.Base(name)] {
						t.Errorf("features.md:%d: %s names %s, which is in no testdata folder", e.line, e.id, name)
					}
				}
			}
		}
	}

	var missing []string
	for id := range cited {
		if _, ok := listed[id]; !ok {
			missing = append(missing, id)
		}
	}
	slices.SortFunc(missing, idLess)
	for _, id := range missing {
		c := cited[id]
		t.Errorf("%s is cited (first at %s:%d) but features.md does not list it", id, c.file, c.line)
	}

	for _, letter := range []string{"F", "B"} {
		high := 0
		for id := range listed {
			if strings.HasPrefix(id, letter) {
				n, _ := strconv.Atoi(id[1:])
				high = max(high, n)
			}
		}
		for n := 1; n <= high; n++ {
			if _, ok := listed[fmt.Sprint(letter, n)]; !ok {
				t.Errorf("features.md lists %s%d but not %s%d", letter, high, letter, n)
			}
		}
	}
}
