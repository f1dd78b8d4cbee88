// Package sipptrace reads SIPp's message trace (-trace_msg with
// -message_file): every SIP message a SIPp run sent and received, with
// when. The interop tests and bench/notify read their SIPp phones through
// it.
//
// Each entry of the trace is a separator line of dashes and a timestamp, a
// line "UDP message sent (N bytes):" or "UDP message received [N] bytes :"
// (TCP alike), a blank line, then the message as it went on the wire.
package sipptrace

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Message is one SIP message of a trace (or off the wire: ParseMessage).
type Message struct {
	At       time.Time // when SIPp sent or received it
	Received bool
	Text     string // the whole entry: start line, headers, blank line, body; line ends \n
	body     string
}

// StartLine is the request or status line.
func (m Message) StartLine() string {
	line, _, _ := strings.Cut(m.Text, "\n")
	return strings.TrimSpace(line)
}

// IsRequest reports whether m is a request of method.
func (m Message) IsRequest(method string) bool { return strings.HasPrefix(m.Text, method+" ") }

// Header returns the first value of header name (long name,
// case-insensitive), or "".
func (m Message) Header(name string) string {
	if v := m.Headers(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Headers returns every value of header name (long name, case-insensitive).
func (m Message) Headers(name string) []string {
	var out []string
	head, _, _ := strings.Cut(m.Text, "\n\n")
	for _, line := range strings.Split(head, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// Body is the message body: its Content-Length bytes as on the wire, line
// ends \n; without a valid Content-Length (UDP, RFC 3261 18.3), the rest of
// the entry.
func (m Message) Body() string { return m.body }

// sep starts each entry; its groups are the timestamp and sent/received.
var sep = regexp.MustCompile(`(?m)^-{20,} (.*)\n(?:UDP|TCP) message (sent|received).*\n\n`)

// Parse splits a whole trace. An entry still being written (its head or
// body not all there) is left out.
func Parse(trace string) []Message {
	msgs, _ := parse([]byte(trace))
	return msgs
}

// parse splits the entries of buf; consumed is where the incomplete last
// entry starts (len(buf) when there is none).
func parse(buf []byte) (msgs []Message, consumed int) {
	idx := sep.FindAllSubmatchIndex(buf, -1)
	for i, ix := range idx {
		end := len(buf)
		last := i+1 == len(idx)
		if !last {
			end = idx[i+1][0]
		}
		m, complete := entry(buf[ix[1]:end])
		if last && !complete {
			return msgs, ix[0]
		}
		m.At, _ = time.ParseInLocation("2006-01-02 15:04:05.999999", string(buf[ix[2]:ix[3]]), time.Local)
		m.Received = string(buf[ix[4]:ix[5]]) == "received"
		msgs = append(msgs, m)
	}
	return msgs, len(buf)
}

// ParseMessage reads one SIP message as it came off the wire.
func ParseMessage(raw []byte) Message {
	m, _ := entry(raw)
	return m
}

// entry parses the message of one entry; complete is false while its head
// or body is not all in the file yet.
func entry(raw []byte) (Message, bool) {
	raw = bytes.TrimLeft(raw, "\r\n")
	m := Message{Text: strings.ReplaceAll(string(raw), "\r\n", "\n")}
	blank := []byte("\r\n\r\n")
	i := bytes.Index(raw, blank)
	if i < 0 {
		blank = []byte("\n\n")
		if i = bytes.Index(raw, blank); i < 0 {
			return m, false
		}
	}
	body := raw[i+len(blank):]
	m.body = strings.ReplaceAll(string(body), "\r\n", "\n")
	if n, err := strconv.Atoi(m.Header("Content-Length")); err == nil && n >= 0 {
		if len(body) < n {
			return m, false // the rest, if the next entry follows
		}
		m.body = strings.ReplaceAll(string(body[:n]), "\r\n", "\n")
	}
	return m, true
}

// File follows a trace as SIPp writes it: Update reads only the new bytes
// and adds the entries complete by then to Messages.
type File struct {
	Path     string
	Messages []Message
	off      int64
	buf      []byte
}

// Update reads what SIPp added since the last call (at most 64 MB).
func (f *File) Update() error {
	file, err := os.Open(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // SIPp has not written it yet
	}
	if err != nil {
		return err
	}
	defer file.Close()
	if _, err := file.Seek(f.off, io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(file, 64<<20))
	if err != nil {
		return err
	}
	f.off += int64(len(data))
	f.buf = append(f.buf, data...)
	msgs, consumed := parse(f.buf)
	f.Messages = append(f.Messages, msgs...)
	f.buf = append([]byte(nil), f.buf[consumed:]...)
	return nil
}
