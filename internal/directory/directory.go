// Package directory is the live set of lines (DNs) the server knows: the
// configuration's lines with the API's stored changes over them, looked up
// on every REGISTER and INVITE, and changed while running by the API's
// line PUT and DELETE (Put, Remove). A map behind a read-write lock.
package directory

import (
	"sort"
	"sync"

	"github.com/callbackd/callbackd/internal/config"
)

// Directory maps DNs to lines. Safe for concurrent use.
type Directory struct {
	mu    sync.RWMutex
	lines map[string]config.Line
}

// New returns a directory holding lines.
func New(lines []config.Line) *Directory {
	d := &Directory{lines: make(map[string]config.Line, len(lines))}
	for _, l := range lines {
		d.lines[l.DN] = l
	}
	return d
}

// Line looks a DN up.
func (d *Directory) Line(dn string) (config.Line, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	l, ok := d.lines[dn]
	return l, ok
}

// Password returns a line's password, for digest authentication.
func (d *Directory) Password(dn string) (string, bool) {
	l, ok := d.Line(dn)
	return l.Password, ok
}

// Lines returns every line sorted by DN.
func (d *Directory) Lines() []config.Line {
	d.mu.RLock()
	out := make([]config.Line, 0, len(d.lines))
	for _, l := range d.lines {
		out = append(out, l)
	}
	d.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].DN < out[j].DN })
	return out
}

// Put adds a line or replaces it (a change through the API).
func (d *Directory) Put(l config.Line) {
	d.mu.Lock()
	d.lines[l.DN] = l
	d.mu.Unlock()
}

// Remove deletes a line; it reports whether there was one.
func (d *Directory) Remove(dn string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.lines[dn]
	delete(d.lines, dn)
	return ok
}
