package callcompletion

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/siptest"
)

// publisher is a monitor with one subscriber, sip:1001@a, on cc-URI
// sip:2001@b, and a record of the engine steps.
type publisher struct {
	*Publications
	mu    sync.Mutex
	steps []string
	step  chan struct{}
}

func newPublisher(t *testing.T) *publisher {
	p := &publisher{step: make(chan struct{}, 16)}
	resolve := func(req *sip.Request, tx sip.ServerTransaction) (Subscriber, bool) {
		if req.From().Address.User != "1001" {
			res := sip.NewResponseFromRequest(req, 403, "Forbidden", nil)
			_ = tx.Respond(res)
			return Subscriber{}, false
		}
		return Subscriber{Peer: "pbx1", Ref: 7}, true
	}
	suspend := func(s Subscriber, suspend bool) {
		p.mu.Lock()
		p.steps = append(p.steps, fmt.Sprintf("%s#%d suspend=%v", s.Peer, s.Ref, suspend))
		p.mu.Unlock()
		p.step <- struct{}{}
	}
	p.Publications = NewPublications(resolve, suspend, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return p
}

func (p *publisher) stepsSoFar() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.steps, ", ")
}

// publish sends a PUBLISH; hdrs are extra header lines. It returns the
// response.
func (p *publisher) publish(t *testing.T, from, event, body string, hdrs ...string) *sip.Response {
	t.Helper()
	raw := "PUBLISH sip:2001@b SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK" + newETag() + "\r\n" +
		"From: <sip:" + from + "@a>;tag=1\r\nTo: <sip:2001@b>\r\nCall-ID: " + newETag() + "\r\nCSeq: 1 PUBLISH\r\nMax-Forwards: 70\r\n"
	if event != "" {
		raw += "Event: " + event + "\r\n"
	}
	for _, h := range hdrs {
		raw += h + "\r\n"
	}
	if body != "" && !strings.Contains(strings.Join(hdrs, "\n"), "Content-Type") {
		raw += "Content-Type: application/pidf+xml\r\n"
	}
	raw += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatalf("test PUBLISH does not parse: %v", err)
	}
	req := m.(*sip.Request)
	req.SetSource("127.0.0.2:5060")
	tx := siptest.NewTx(req)
	p.Handle(req, tx)
	res := tx.Result()
	if len(res.Codes()) != 1 {
		t.Fatalf("PUBLISH answered %v, want one final response", res.Codes())
	}
	return res.Final
}

func header(res *sip.Response, name string) string {
	if h := res.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

func (p *publisher) waitSteps(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for p.stepsSoFar() != want {
		select {
		case <-p.step:
		case <-deadline:
			t.Fatalf("engine steps %q, want %q", p.stepsSoFar(), want)
		}
	}
}

// F17 across servers: A busy -> PUBLISH closed suspends, open resumes; a
// refresh keeps the state under a new ETag; the old one is stale (412);
// Expires: 0 removes it.
func TestF17_PublishSuspendResume(t *testing.T) {
	p := newPublisher(t)
	closed, open := string(BuildPIDF("sip:1001@a", false)), string(BuildPIDF("sip:1001@a", true))

	res := p.publish(t, "1001", "call-completion", closed, "Expires: 600")
	etag := header(res, "SIP-ETag")
	if res.StatusCode != 200 || etag == "" || header(res, "Expires") != "600" {
		t.Fatalf("initial PUBLISH: %d, SIP-ETag %q, Expires %q", res.StatusCode, etag, header(res, "Expires"))
	}
	p.waitSteps(t, "pbx1#7 suspend=true")

	res = p.publish(t, "1001", "call-completion", "", "SIP-If-Match: "+etag, "Expires: 7200")
	refreshed := header(res, "SIP-ETag")
	if res.StatusCode != 200 || refreshed == "" || refreshed == etag || header(res, "Expires") != "3600" {
		t.Fatalf("refresh: %d, SIP-ETag %q (was %q), Expires %q", res.StatusCode, refreshed, etag, header(res, "Expires"))
	}
	if res := p.publish(t, "1001", "call-completion", "", "SIP-If-Match: "+etag); res.StatusCode != 412 {
		t.Fatalf("refresh with the replaced ETag: %d, want 412", res.StatusCode)
	}

	// Event: presence is RFC 6910's own example.
	res = p.publish(t, "1001", "presence", open, "SIP-If-Match: "+refreshed)
	if res.StatusCode != 200 {
		t.Fatalf("modify to open: %d", res.StatusCode)
	}
	p.waitSteps(t, "pbx1#7 suspend=true, pbx1#7 suspend=false")

	res = p.publish(t, "1001", "call-completion", closed, "SIP-If-Match: "+header(res, "SIP-ETag"))
	p.waitSteps(t, "pbx1#7 suspend=true, pbx1#7 suspend=false, pbx1#7 suspend=true")
	res = p.publish(t, "1001", "call-completion", "", "SIP-If-Match: "+header(res, "SIP-ETag"), "Expires: 0")
	if res.StatusCode != 200 || header(res, "Expires") != "0" || p.Len() != 0 {
		t.Fatalf("removal: %d, Expires %q, %d publications left", res.StatusCode, header(res, "Expires"), p.Len())
	}
	// A closed caller whose publication is removed is open again.
	p.waitSteps(t, "pbx1#7 suspend=true, pbx1#7 suspend=false, pbx1#7 suspend=true, pbx1#7 suspend=false")
}

// An expired publication is gone (412 on its ETag) and a closed one
// resumes the request.
func TestF17_PublishExpiry(t *testing.T) {
	p := newPublisher(t)
	p.MinExpires = time.Second
	res := p.publish(t, "1001", "call-completion", string(BuildPIDF("sip:1001@a", false)), "Expires: 1")
	p.waitSteps(t, "pbx1#7 suspend=true")
	p.waitSteps(t, "pbx1#7 suspend=true, pbx1#7 suspend=false") // the expiry
	if res := p.publish(t, "1001", "call-completion", "", "SIP-If-Match: "+header(res, "SIP-ETag")); res.StatusCode != 412 {
		t.Fatalf("refresh after expiry: %d, want 412", res.StatusCode)
	}
}

// B1: what the monitor refuses, and that a refusal steps nothing.
func TestB1_PublishRefused(t *testing.T) {
	p := newPublisher(t)
	closed := string(BuildPIDF("sip:1001@a", false))
	cases := []struct {
		name, from, event, body string
		hdrs                    []string
		code                    int
		header                  string
	}{
		{"unknown event", "1001", "dialog", closed, nil, 489, "Allow-Events"},
		{"no event", "1001", "", closed, nil, 489, "Allow-Events"},
		{"not the subscriber", "1002", "call-completion", closed, nil, 403, ""},
		{"stale ETag", "1001", "call-completion", closed, []string{"SIP-If-Match: 0123"}, 412, ""},
		{"initial without body", "1001", "call-completion", "", nil, 400, ""},
		{"removal without ETag", "1001", "call-completion", closed, []string{"Expires: 0"}, 400, ""},
		{"too brief", "1001", "call-completion", closed, []string{"Expires: 5"}, 423, "Min-Expires"},
		{"bad Expires", "1001", "call-completion", closed, []string{"Expires: soon"}, 400, ""},
		{"not PIDF", "1001", "call-completion", "cc-state: ready", []string{"Content-Type: text/plain"}, 415, "Accept"},
		{"bad PIDF", "1001", "call-completion", "<presence><tuple>", nil, 400, ""},
	}
	for _, c := range cases {
		res := p.publish(t, c.from, c.event, c.body, c.hdrs...)
		if res.StatusCode != c.code || (c.header != "" && header(res, c.header) == "") {
			t.Errorf("%s: %d %s, want %d with %s", c.name, res.StatusCode, res.Reason, c.code, c.header)
		}
	}
	if s := p.stepsSoFar(); s != "" || p.Len() != 0 {
		t.Errorf("refused PUBLISHes stepped %q and left %d publications", s, p.Len())
	}
}

// FuzzPublishHandle: whatever a PUBLISH carries (Event, Expires,
// SIP-If-Match, Content-Type, body), the monitor answers it once with one
// of the RFC 3903 answers, and never panics.
func FuzzPublishHandle(f *testing.F) {
	f.Add("call-completion", "600", "", "application/pidf+xml", string(BuildPIDF("sip:1001@a", false)))
	f.Add("presence", "0", "abc", "", "")
	f.Add("Call-Completion;id=1", "4294967296", "", "application/pidf+xml; charset=x", "<presence><tuple><status><basic>open")
	f.Fuzz(func(t *testing.T, event, expires, ifMatch, ctype, body string) {
		p := newPublisher(t)
		raw := "PUBLISH sip:2001@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKf\r\n" +
			"From: <sip:1001@a>;tag=1\r\nTo: <sip:2001@b>\r\nCall-ID: f\r\nCSeq: 1 PUBLISH\r\nMax-Forwards: 70\r\n" +
			"Event: " + event + "\r\nExpires: " + expires + "\r\nSIP-If-Match: " + ifMatch + "\r\nContent-Type: " + ctype + "\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
		m, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok {
			return
		}
		req.SetSource("127.0.0.2:5060")
		tx := siptest.NewTx(req)
		p.Handle(req, tx)
		codes := tx.Result().Codes()
		if len(codes) != 1 {
			t.Fatalf("answered %v, want one final response", codes)
		}
		switch codes[0] {
		case 200, 400, 412, 415, 423, 489:
		default:
			t.Fatalf("answered %d", codes[0])
		}
		p.Publications.Forget(Subscriber{Peer: "pbx1", Ref: 7}) // stop its timer
	})
}
