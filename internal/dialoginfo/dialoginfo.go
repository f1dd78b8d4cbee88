// Package dialoginfo is the dialog event package's document,
// application/dialog-info+xml (RFC 4235 section 4): built for the NOTIFYs
// we send (full and partial state) and read from the NOTIFYs another
// server sends us. It does no I/O.
package dialoginfo

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// ContentType is the document's MIME type (RFC 4235 4.1).
const ContentType = "application/dialog-info+xml"

// Namespace is the document's XML namespace (RFC 4235 4.1).
const Namespace = "urn:ietf:params:xml:ns:dialog-info"

// Document states (RFC 4235 4.1.1).
const (
	Full    = "full"
	Partial = "partial"
)

// Dialog states (RFC 4235 3.7.1).
const (
	Trying     = "trying"
	Proceeding = "proceeding"
	Early      = "early"
	Confirmed  = "confirmed"
	Terminated = "terminated"
)

// Directions (RFC 4235 4.1.2).
const (
	Initiator = "initiator"
	Recipient = "recipient"
)

// Limits on a document read from the network: bigger ones are refused.
const (
	MaxSize    = 64 << 10
	MaxDialogs = 256
)

// Info is one dialog-info document.
type Info struct {
	XMLName xml.Name `xml:"urn:ietf:params:xml:ns:dialog-info dialog-info"`
	Version uint64   `xml:"version,attr"`
	State   string   `xml:"state,attr"`
	Entity  string   `xml:"entity,attr"`
	Dialogs []Dialog `xml:"dialog"`
}

// Dialog is one dialog of the entity (RFC 4235 4.1.2).
type Dialog struct {
	ID        string `xml:"id,attr"`
	CallID    string `xml:"call-id,attr,omitempty"`
	LocalTag  string `xml:"local-tag,attr,omitempty"`
	RemoteTag string `xml:"remote-tag,attr,omitempty"`
	Direction string `xml:"direction,attr,omitempty"`
	State     State  `xml:"state"`
	Local     *Party `xml:"local,omitempty"`
	Remote    *Party `xml:"remote,omitempty"`
}

// State is a dialog's state element, with the event that ended it.
type State struct {
	Value string `xml:",chardata"`
	Event string `xml:"event,attr,omitempty"` // cancelled, rejected, replaced, local-bye, remote-bye, error, timeout
	Code  int    `xml:"code,attr,omitempty"`
}

// Party is the local or remote participant (RFC 4235 4.1.6).
type Party struct {
	Identity *Identity `xml:"identity,omitempty"`
	Target   *Target   `xml:"target,omitempty"`
}

// Identity is a participant's address and display name.
type Identity struct {
	Display string `xml:"display,attr,omitempty"`
	URI     string `xml:",chardata"`
}

// Target is a participant's remote target (Contact).
type Target struct {
	URI string `xml:"uri,attr"`
}

// Marshal writes the document, with the XML declaration.
func (i Info) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", " ")
	if err := enc.Encode(i); err != nil {
		// Only strings and numbers: encoding cannot fail.
		panic(fmt.Sprintf("dialoginfo: %v", err))
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// Parse reads a document from the network: at most MaxSize bytes and
// MaxDialogs dialogs, its root dialog-info in the RFC's namespace, a
// state of full or partial, and each dialog's state one of RFC 4235's.
func Parse(data []byte) (Info, error) {
	var i Info
	if len(data) > MaxSize {
		return i, fmt.Errorf("dialog-info: %d bytes, more than %d", len(data), MaxSize)
	}
	if err := xml.Unmarshal(data, &i); err != nil {
		return Info{}, fmt.Errorf("dialog-info: %w", err)
	}
	if i.XMLName.Space != Namespace {
		return Info{}, errors.New("dialog-info: not in namespace " + Namespace)
	}
	if i.State != Full && i.State != Partial {
		return Info{}, fmt.Errorf("dialog-info: state %q", truncate(i.State))
	}
	if len(i.Dialogs) > MaxDialogs {
		return Info{}, fmt.Errorf("dialog-info: %d dialogs, more than %d", len(i.Dialogs), MaxDialogs)
	}
	for n := range i.Dialogs {
		d := &i.Dialogs[n]
		d.State.Value = strings.TrimSpace(d.State.Value)
		switch d.State.Value {
		case Trying, Proceeding, Early, Confirmed, Terminated:
		default:
			return Info{}, fmt.Errorf("dialog-info: dialog state %q", truncate(d.State.Value))
		}
		if d.ID == "" {
			return Info{}, errors.New("dialog-info: dialog without id")
		}
	}
	return i, nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32]
	}
	return s
}

// View is what a subscriber knows of an entity's dialogs, built from the
// documents of one subscription in order (RFC 4235 4.1.1).
type View struct {
	version uint64
	seen    bool
	dialogs map[string]string // id -> state, terminated ones dropped
}

// Apply takes the next document. A full document replaces what was known
// (a new subscription numbers its versions from anew); a partial one
// updates it, unless its version is not above the last one (a reordered
// or repeated NOTIFY: false).
func (v *View) Apply(i Info) bool {
	if i.State == Partial && v.seen && i.Version <= v.version {
		return false
	}
	if v.dialogs == nil || i.State == Full {
		v.dialogs = map[string]string{}
	}
	v.version, v.seen = i.Version, true
	for _, d := range i.Dialogs {
		if d.State.Value == Terminated {
			delete(v.dialogs, d.ID)
		} else {
			v.dialogs[d.ID] = d.State.Value
		}
	}
	return true
}

// Busy reports whether any dialog of the entity is not terminated: it is
// off hook, dialing or ringing.
func (v *View) Busy() bool { return len(v.dialogs) > 0 }

// OffHook reports whether a dialog of the entity is past ringing: trying,
// proceeding as the caller, or confirmed (RFC 4235 3.7.1). A line that
// only rings is not off hook.
func (v *View) OffHook() bool {
	for _, s := range v.dialogs {
		if s != Early {
			return true
		}
	}
	return false
}
