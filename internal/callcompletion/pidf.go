package callcompletion

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// PIDFContentType is the PUBLISH body type (RFC 3863, RFC 6910 s9).
const PIDFContentType = "application/pidf+xml"

// Presence is what the agent's PUBLISH says (RFC 6910 s9, s11.2.3): the
// caller (Entity) is open (may take the CC call: resume) or closed (busy:
// suspend).
type Presence struct {
	Entity string
	Open   bool
}

type pidfDoc struct {
	XMLName xml.Name    `xml:"presence"`
	Entity  string      `xml:"entity,attr"`
	Tuples  []pidfTuple `xml:"tuple"`
}

type pidfTuple struct {
	ID    string `xml:"id,attr"`
	Basic string `xml:"status>basic"`
}

var errPIDF = errors.New("PIDF")

// ParsePIDF reads the minimal PIDF of RFC 6910 s9: a presence element
// with tuples whose status/basic is open or closed. Closed in any tuple
// wins (the caller is busy on one of its devices). No tuple with a basic
// status, or an unknown one, is an error; other elements are ignored.
func ParsePIDF(b []byte) (Presence, error) {
	if len(b) > MaxBody {
		return Presence{}, fmt.Errorf("%w: %d bytes, more than %d", errPIDF, len(b), MaxBody)
	}
	var doc pidfDoc
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	// No DTDs or entities beyond XML's own: encoding/xml expands none.
	if err := d.Decode(&doc); err != nil {
		return Presence{}, fmt.Errorf("%w: %v", errPIDF, err)
	}
	var open, closed bool
	for _, t := range doc.Tuples {
		switch strings.TrimSpace(t.Basic) {
		case "open":
			open = true
		case "closed":
			closed = true
		case "":
		default:
			return Presence{}, fmt.Errorf("%w: unknown basic status %q", errPIDF, truncate(t.Basic))
		}
	}
	if !open && !closed {
		return Presence{}, fmt.Errorf("%w: no tuple with a basic status", errPIDF)
	}
	p := Presence{Entity: doc.Entity, Open: open && !closed}
	return p, nil
}

// BuildPIDF is the agent's PUBLISH body for entity (the caller's AOR).
func BuildPIDF(entity string, open bool) []byte {
	basic := "closed"
	if open {
		basic = "open"
	}
	var e bytes.Buffer
	_ = xml.EscapeText(&e, []byte(entity))
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\r\n" +
		`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="` + e.String() + `">` + "\r\n" +
		`<tuple id="cc"><status><basic>` + basic + `</basic></status></tuple>` + "\r\n" +
		`</presence>` + "\r\n")
}
