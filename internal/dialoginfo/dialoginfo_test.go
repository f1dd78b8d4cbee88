package dialoginfo

import (
	"strings"
	"testing"
)

// A document we build reads back the same.
func TestB6_MarshalParse(t *testing.T) {
	in := Info{Version: 3, State: Full, Entity: "sip:1001@127.0.0.1", Dialogs: []Dialog{{
		ID: "a1", CallID: "c1", Direction: Recipient, State: State{Value: Early},
		Local:  &Party{Identity: &Identity{URI: "sip:1001@127.0.0.1"}},
		Remote: &Party{Identity: &Identity{Display: "1002", URI: "sip:1002@127.0.0.1"}},
	}}}
	data := in.Marshal()
	if !strings.Contains(string(data), `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full" entity="sip:1001@127.0.0.1">`) {
		t.Fatalf("document:\n%s", data)
	}
	out, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if out.Version != 3 || len(out.Dialogs) != 1 || out.Dialogs[0].Remote.Identity.URI != "sip:1002@127.0.0.1" || out.Dialogs[0].State.Value != Early {
		t.Errorf("read back %+v", out)
	}
}

// What Kamailio's pua_dialoginfo sends (RFC 4235 4.2 examples' shape),
// and documents refused.
func TestB6_ParseForeign(t *testing.T) {
	kamailio := `<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:2001@127.0.0.1">
  <dialog id="xyz" call-id="abc@host" direction="recipient">
    <state>confirmed</state>
    <remote><identity>sip:1001@127.0.0.1</identity><target uri="sip:1001@127.0.0.1"/></remote>
    <local><identity>sip:2001@127.0.0.1</identity></local>
  </dialog>
</dialog-info>`
	i, err := Parse([]byte(kamailio))
	if err != nil {
		t.Fatal(err)
	}
	var v View
	if !v.Apply(i) || !v.Busy() || !v.OffHook() {
		t.Errorf("view after confirmed: busy %v off hook %v", v.Busy(), v.OffHook())
	}
	ended := strings.Replace(strings.Replace(kamailio, "confirmed", "terminated", 1), `version="1"`, `version="2"`, 1)
	i, _ = Parse([]byte(ended))
	if !v.Apply(i) || v.Busy() {
		t.Error("still busy after terminated")
	}
	partial := strings.Replace(strings.Replace(kamailio, `state="full"`, `state="partial"`, 1), `version="1"`, `version="2"`, 1)
	i, _ = Parse([]byte(partial))
	if v.Apply(i) || v.Busy() {
		t.Error("a partial document of a version seen already applied")
	}
	for name, doc := range map[string]string{
		"no namespace": `<dialog-info version="1" state="full" entity="x"/>`,
		"bad state":    `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="some" entity="x"/>`,
		"dialog state": `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="x"><dialog id="a"><state>busy</state></dialog></dialog-info>`,
		"no id":        `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="x"><dialog><state>early</state></dialog></dialog-info>`,
		"version":      `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="-1" state="full" entity="x"/>`,
		"too big":      `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="` + strings.Repeat("x", MaxSize) + `"/>`,
		"not xml":      `hello`,
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParse: dialog-info documents from the network (a NOTIFY's body)
// never panic; what is accepted keeps the limits and builds again.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:2001@h"><dialog id="a" direction="initiator"><state event="remote-bye" code="200">terminated</state><local><identity display="x">sip:a@b</identity><target uri="sip:c@d"/></local></dialog></dialog-info>`))
	f.Add([]byte(`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="9" state="partial" entity="x"><dialog id="a"><state>early</state></dialog><dialog id="b"><state>confirmed</state></dialog></dialog-info>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info">&a;</dialog-info>`))
	f.Add([]byte(`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="18446744073709551615" state="full" entity=""/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		i, err := Parse(data)
		if err != nil {
			return
		}
		if len(i.Dialogs) > MaxDialogs || (i.State != Full && i.State != Partial) {
			t.Fatalf("accepted %+v", i)
		}
		var v View
		v.Apply(i)
		if _, err := Parse(i.Marshal()); err != nil {
			t.Fatalf("an accepted document does not read back: %v", err)
		}
	})
}
