package docs

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// layerRowRE is a row of the layer table in architecture.md:
// "| 2 | `internal/engine`, `internal/media` | what they are |".
var layerRowRE = regexp.MustCompile("^\\|\\s*([0-9]+)\\s*\\|([^|]*)\\|")

// readLayers parses the table under "## Layers" in architecture.md into
// package path (relative to the module) -> layer.
func readLayers(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	layers := map[string]int{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Layers"
			continue
		}
		m := layerRowRE.FindStringSubmatch(line)
		if !in || m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		for _, p := range refRE.FindAllStringSubmatch(m[2], -1) {
			if prev, ok := layers[p[1]]; ok {
				t.Errorf("architecture.md: %s is in layers %d and %d", p[1], prev, n)
			}
			layers[p[1]] = n
		}
	}
	if len(layers) == 0 {
		t.Fatal("architecture.md: no layer table under \"## Layers\"")
	}
	return layers
}

// TestLayers: the one direction of flow (docs/architecture.md). Every
// package of the module is in the layer table, and imports only packages of
// lower layers: nothing imports the layer it serves.
func TestLayers(t *testing.T) {
	layers := readLayers(t)
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "-e", "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/callbackd/callbackd/"
	dec := json.NewDecoder(strings.NewReader(string(out)))
	listed := map[string]bool{}
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		listed[name] = true
		at, ok := layers[name]
		if !ok {
			t.Errorf("package %s is not in architecture.md's layer table", name)
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			if l, ok := layers[dep]; ok && l >= at {
				t.Errorf("%s (layer %d) imports %s (layer %d): against the flow", name, at, dep, l)
			}
		}
	}
	for name := range layers {
		if !listed[name] {
			t.Errorf("architecture.md lists %s, which is no package of the module", name)
		}
	}
}
