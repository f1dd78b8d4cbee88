package sipptrace

import (
	"os"
	"path/filepath"
	"testing"
)

const sent = "----------------------------------------------- 2026-01-02 15:04:05.123456\n" +
	"UDP message sent (120 bytes):\n\n" +
	"MESSAGE sip:1001@127.0.0.1 SIP/2.0\r\nCall-ID: a@b\r\nCSeq: 1 MESSAGE\r\nvia: SIP/2.0/UDP x\r\nVia: SIP/2.0/UDP y\r\nContent-Length: 9\r\n\r\nHi\r\nthere\n\n"

const received = "----------------------------------------------- 2026-01-02 15:04:05.200000\n" +
	"UDP message received [50] bytes :\n\n" +
	"SIP/2.0 200 OK\r\nCall-ID: a@b\r\nCSeq: 1 MESSAGE\r\n\r\n\n"

func TestParse(t *testing.T) {
	ms := Parse(sent + received + received[:150])
	if len(ms) != 2 {
		t.Fatalf("%d messages, want 2 (the entry being written left out)", len(ms))
	}
	m := ms[0]
	if m.Received || !m.IsRequest("MESSAGE") || m.StartLine() != "MESSAGE sip:1001@127.0.0.1 SIP/2.0" ||
		m.Header("call-id") != "a@b" || m.Body() != "Hi\nthere" || m.At.Nanosecond() != 123456000 {
		t.Errorf("sent: %+v, start %q, body %q", m, m.StartLine(), m.Body())
	}
	if v := m.Headers("Via"); len(v) != 2 || v[1] != "SIP/2.0/UDP y" {
		t.Errorf("Via: %q", v)
	}
	if m := ms[1]; !m.Received || m.StartLine() != "SIP/2.0 200 OK" || m.Body() != "\n" || m.Header("Content-Length") != "" {
		t.Errorf("received: %+v, body %q", m, m.Body())
	}
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "messages.log")
	f := &File{Path: path}
	if err := f.Update(); err != nil || len(f.Messages) != 0 {
		t.Fatalf("no file yet: %v, %d messages", err, len(f.Messages))
	}
	half := len(sent) - 5 // the body not all there
	for _, upto := range []int{half, len(sent), len(sent + received)} {
		if err := os.WriteFile(path, []byte((sent + received)[:upto]), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := f.Update(); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.Messages) != 2 || f.Messages[0].Body() != "Hi\nthere" || !f.Messages[1].Received {
		t.Errorf("%+v", f.Messages)
	}
}
