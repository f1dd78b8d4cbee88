package config

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positions maps a value's path to the line it is on. go-toml does not give
// decoded values positions, so the file is parsed a second time with its AST
// parser, on the first question only: a line is needed for an error, and
// the second parse of a file of 100,000 lines is a fifth of a second of
// every start (issue 14). Paths are lower case (go-toml matches keys
// case-insensitively) and index arrays: "sip.listen[1]", "line[0]" (the
// [[line]] header), "line[0].dn". A nil *positions knows no lines.
type positions struct {
	data []byte
	once sync.Once
	m    map[string]int
}

func newPositions(data []byte) *positions { return &positions{data: data} }

// lines returns the map, scanning the file the first time.
func (p *positions) lines() map[string]int {
	if p == nil {
		return nil
	}
	p.once.Do(func() { p.m, p.data = scanPositions(p.data), nil })
	return p.m
}

// has reports whether the file has path.
func (p *positions) has(path string) bool {
	_, ok := p.lines()[path]
	return ok
}

// later returns whichever of paths a and b is further down the file (b when
// neither is there).
func (p *positions) later(a, b string) string {
	if m := p.lines(); m[a] > m[b] {
		return a
	}
	return b
}

// line returns the line of path, or of its closest ancestor that has one
// (a line missing a key points at its [[line]] header), or 0.
func (p *positions) line(path string) int {
	m := p.lines()
	path = strings.ToLower(path)
	for path != "" {
		if n, ok := m[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func scanPositions(data []byte) map[string]int {
	s := scanner{pos: map[string]int{}, tables: map[string]int{}}
	for i, b := range data {
		if b == '\n' {
			s.newlines = append(s.newlines, i)
		}
	}
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = s.header(e)
		case unstable.KeyValue:
			s.keyValue(table, e)
		}
	}
	// A parse error only means fewer positions: the decoder, which parsed
	// the same file, is the one that reports syntax errors.
	return s.pos
}

type scanner struct {
	newlines []int // offsets of '\n', to turn offsets into lines
	pos      map[string]int
	tables   map[string]int // [[array]] path -> elements seen so far
}

// header records a [table] or [[array]] header and returns its path.
func (s *scanner) header(e *unstable.Node) string {
	path, off := "", -1
	it := e.Key()
	for it.Next() {
		k := it.Node()
		if off < 0 {
			off = int(k.Raw.Offset)
		}
		path = join(path, k.Data)
		n := s.tables[path]
		if e.Kind == unstable.ArrayTable && it.IsLast() {
			s.tables[path] = n + 1
			path = index(path, n)
		} else if n > 0 {
			// [a.b] after [[a]] belongs to the last element of a.
			path = index(path, n-1)
		}
	}
	s.set(path, off)
	return path
}

func (s *scanner) keyValue(table string, kv *unstable.Node) {
	path := table
	it := kv.Key()
	for it.Next() {
		path = join(path, it.Node().Data)
	}
	s.value(path, kv.Value(), int(kv.Raw.Offset))
}

// value records path at off, then the elements of arrays and inline tables
// at their own offsets (a multi-line array has one element per line).
func (s *scanner) value(path string, v *unstable.Node, off int) {
	s.set(path, off)
	switch v.Kind {
	case unstable.Array:
		i := 0
		it := v.Children()
		for it.Next() {
			el := it.Node()
			elOff := off
			// Arrays carry no Raw range of their own; scalars and inline
			// tables do.
			if el.Raw.Length > 0 {
				elOff = int(el.Raw.Offset)
			}
			s.value(index(path, i), el, elOff)
			i++
		}
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			s.keyValue(path, it.Node())
		}
	}
}

func (s *scanner) set(path string, off int) {
	if _, ok := s.pos[path]; ok || off < 0 {
		return
	}
	n, _ := slices.BinarySearch(s.newlines, off)
	s.pos[path] = 1 + n
}

func join(path string, key []byte) string {
	k := strings.ToLower(string(key))
	if path == "" {
		return k
	}
	return path + "." + k
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
