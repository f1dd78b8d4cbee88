package config

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Error is one problem in a configuration file. Parse and Load return either
// a single *Error or an errors.Join of several, sorted by line; errors.As
// finds the first.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown or not meaningful
	Msg    string
	Key    string // the key at fault ("callback.t3", "line[2].dn"); may be empty
}

// Error formats as FILE:LINE:COL: MSG, leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

type errorList []*Error

func (l *errorList) add(file string, line, col int, format string, args ...any) *errorList {
	*l = append(*l, &Error{File: file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
	return l
}

// err returns nil, the single error, or all of them joined, sorted by line.
func (l errorList) err() error {
	switch len(l) {
	case 0:
		return nil
	case 1:
		return l[0]
	}
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func keyString(k toml.Key) string { return strings.Join(k, ".") }

// go-toml words type errors in terms of Go struct fields; users wrote TOML.
var typeMismatch = regexp.MustCompile(`^cannot decode TOML (.+?) into .* of type (\S+)$`)

func decodeMessage(e *toml.DecodeError) string {
	msg := strings.TrimPrefix(e.Error(), "toml: ")
	m := typeMismatch.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	key, want := keyString(e.Key()), tomlType(m[2])
	if _, ok := durationLimits[strings.ToLower(key)]; ok {
		want = `string such as "30s"`
	}
	return fmt.Sprintf("%s: wrong type: want %s, got %s", key, want, m[1])
}

// tomlType names the TOML type that decodes into the Go type t.
func tomlType(t string) string {
	t = strings.TrimLeft(t, "*")
	switch {
	case t == "int":
		return "integer"
	case t == "string":
		return "string"
	case t == "bool":
		return "boolean"
	case t == "[]string":
		return "array of strings"
	case strings.HasPrefix(t, "[]"):
		return "array of tables"
	default:
		return "table"
	}
}
