package api

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/metrics"
)

// loadOpenAPI parses openapi.json (the file the binary embeds).
func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, OpenAPI()) {
		t.Error("openapi.json differs from the embedded document")
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return doc
}

func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	info, _ := doc["info"].(map[string]any)
	if info == nil || info["title"] == nil || info["version"] != "1" {
		t.Errorf("info = %v, want a title and version \"1\"", info)
	}
}

// httpMethods are the operation keys of an OpenAPI path item.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operations returns the document's operations by "METHOD /path".
func operations(t *testing.T, doc map[string]any) map[string]map[string]any {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("no paths")
	}
	ops := map[string]map[string]any{}
	for path, v := range paths {
		item, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("path %s: not an object", path)
		}
		for _, m := range httpMethods {
			if op, ok := item[m].(map[string]any); ok {
				ops[strings.ToUpper(m)+" "+path] = op
			}
		}
	}
	return ops
}

// registered returns the method-qualified routes of (*API).Register, read
// from api.go's source: r("METHOD /api/v1/...", ...). The catch-all
// r("/api/v1/", ...) has no method and is left out.
func registered(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("api.go")
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(src, []byte("func (a *API) Register("))
	if start < 0 {
		t.Fatal("api.go: no Register")
	}
	body := src[start:]
	if end := bytes.Index(body, []byte("\n}\n")); end >= 0 {
		body = body[:end]
	}
	re := regexp.MustCompile(`\br\("([A-Z]+) (/api/v1/[^"]*)"`)
	var routes []string
	for _, m := range re.FindAllSubmatch(body, -1) {
		routes = append(routes, string(m[1])+" "+string(m[2]))
	}
	if len(routes) == 0 {
		t.Fatal("api.go: no routes found in Register")
	}
	return routes
}

func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := operations(t, doc)
	routes := map[string]bool{}
	for _, r := range registered(t) {
		if routes[r] {
			t.Errorf("route %s registered twice", r)
		}
		routes[r] = true
		if ops[r] == nil {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	var extra []string
	for k := range ops {
		if !routes[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		t.Errorf("openapi.json has %s, which Register does not serve", k)
	}
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

func TestOpenAPIOperations(t *testing.T) {
	doc := loadOpenAPI(t)
	paths := doc["paths"].(map[string]any)
	ids := map[string]string{}
	for key, op := range operations(t, doc) {
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s: no operationId", key)
		} else if other, dup := ids[id]; dup {
			t.Errorf("%s: operationId %q also used by %s", key, id, other)
		} else {
			ids[id] = key
		}
		if s, _ := op["summary"].(string); s == "" {
			t.Errorf("%s: no summary", key)
		}
		responses, _ := op["responses"].(map[string]any)
		if len(responses) == 0 {
			t.Errorf("%s: no responses", key)
		}
		for code := range responses {
			if n, err := strconv.Atoi(code); err != nil || n < 100 || n > 599 {
				t.Errorf("%s: response %q is not a status code", key, code)
			}
		}

		// Every {name} of the path is a declared path parameter.
		path := strings.SplitN(key, " ", 2)[1]
		declared := map[string]bool{}
		for _, list := range []any{op["parameters"], paths[path].(map[string]any)["parameters"]} {
			ps, _ := list.([]any)
			for _, p := range ps {
				p := resolveParam(t, doc, p)
				if p["in"] == "path" {
					declared[p["name"].(string)] = true
				}
			}
		}
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter %s not declared", key, m[1])
			}
			delete(declared, m[1])
		}
		for name := range declared {
			t.Errorf("%s: path parameter %s not in the path", key, name)
		}
	}
}

func resolveParam(t *testing.T, doc map[string]any, p any) map[string]any {
	m, _ := p.(map[string]any)
	if r, ok := m["$ref"].(string); ok {
		v, ok := resolve(doc, r)
		if !ok {
			t.Fatalf("unresolved %s", r)
		}
		m, _ = v.(map[string]any)
	}
	return m
}

// resolve follows a local reference "#/a/b~1c" (a JSON pointer).
func resolve(doc map[string]any, ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	var cur any = doc
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func TestOpenAPIRefs(t *testing.T) {
	doc := loadOpenAPI(t)
	n := 0
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"]; ok {
				s, _ := r.(string)
				n++
				if _, ok := resolve(doc, s); !ok {
					t.Errorf("%s: $ref %q does not resolve", at, s)
				}
			}
			for k, x := range v {
				walk(at+"/"+k, x)
			}
		case []any:
			for i, x := range v {
				walk(at+"/"+strconv.Itoa(i), x)
			}
		}
	}
	walk("#", doc)
	if n == 0 {
		t.Error("no $ref at all")
	}
}

// TestOpenAPIErrorCodes checks that every error code the handlers use is
// listed in the Error schema, and nothing else.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	v, ok := resolve(doc, "#/components/schemas/Error/properties/error/properties/code/enum")
	if !ok {
		t.Fatal("no enum of error codes in the Error schema")
	}
	listed := map[string]bool{}
	for _, c := range v.([]any) {
		listed[c.(string)] = true
	}
	re := regexp.MustCompile(`(?:fail\(w, |newError\()http\.Status\w+, "([a-z_]+)"`)
	used := map[string]bool{}
	for _, f := range []string{"api.go", "resources.go", "events.go", "protect.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(src, -1) {
			used[string(m[1])] = true
		}
	}
	for c := range used {
		if !listed[c] {
			t.Errorf("error code %q is used by the handlers but not in openapi.json", c)
		}
	}
	for c := range listed {
		if !used[c] {
			t.Errorf("error code %q is in openapi.json but no handler uses it", c)
		}
	}
}

// TestOpenAPISchemas checks that the schemas of lines and parameters name
// exactly the fields the handlers read and write: config.Callback's JSON
// names for the parameters, lineJSON's for a line read, lineFields for a
// line written.
func TestOpenAPISchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	names := func(ref string) []string {
		t.Helper()
		v, ok := resolve(doc, ref)
		if !ok {
			t.Fatalf("no %s", ref)
		}
		var out []string
		switch v := v.(type) {
		case map[string]any:
			for k := range v {
				out = append(out, k)
			}
		case []any:
			for _, k := range v {
				out = append(out, k.(string))
			}
		}
		sort.Strings(out)
		return out
	}
	tags := func(v any) []string {
		var out []string
		for f := range reflect.TypeOf(v).Fields() {
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
				out = append(out, name)
			}
		}
		sort.Strings(out)
		return out
	}
	written := slices.Sorted(slices.Values(lineFields))
	for _, c := range []struct {
		ref  string
		want []string
	}{
		{"#/components/schemas/Params/properties", tags(config.Callback{})},
		{"#/components/schemas/Params/required", tags(config.Callback{})},
		{"#/components/schemas/Params/example", tags(config.Callback{})},
		{"#/components/schemas/ParamsUpdate/properties", tags(config.Callback{})},
		{"#/components/schemas/Line/properties", tags(lineJSON{})},
		{"#/components/schemas/Line/required", tags(lineJSON{})},
		{"#/components/schemas/Line/example", tags(lineJSON{})},
		{"#/components/schemas/LineCreate/properties", written},
		{"#/components/schemas/LineUpdate/properties", written},
		{"#/components/schemas/Sample/properties", tags(metrics.Sample{})},
		{"#/components/schemas/Sample/required", tags(metrics.Sample{})},
	} {
		if got := names(c.ref); !slices.Equal(got, c.want) {
			t.Errorf("%s = %v\nwant %v", c.ref, got, c.want)
		}
	}
}
