package linestate

import (
	"fmt"
	"reflect"
	"testing"
)

// B5: busy state is aggregated over all devices of a line; F11 needs every
// transition (busy -> idle, unregistered -> idle) reported in order.
func TestB5_StateAggregatedOverDevicesAndCalls(t *testing.T) {
	tr := New(nil)
	var got []string
	tr.Subscribe(func(c Change) { got = append(got, string(c.Old.State)+">"+string(c.New.State)) })
	tr.SetLine("1002", 2)
	tr.SetDevices("1002", 1)
	tr.SetDevices("1002", 2) // second device: still idle, no state event
	if _, ok := tr.Offer("1002", "c1"); !ok {
		t.Fatal("first call refused")
	}
	tr.Answered("1002", "c1")
	if _, ok := tr.Offer("1002", "c2"); !ok {
		t.Fatal("second call refused below busy trigger 2")
	}
	s, ok := tr.Offer("1002", "c3")
	if ok || !s.Full() || s.Calls != 2 {
		t.Fatalf("third call at busy trigger: ok=%v snapshot=%+v", ok, s)
	}
	tr.Ended("1002", "c2")
	tr.Ended("1002", "c1")
	tr.SetDevices("1002", 1)
	tr.SetDevices("1002", 0)
	want := []string{
		"unregistered>unregistered", // line added (trigger set)
		"unregistered>idle",
		"idle>idle", // devices 1 -> 2
		"idle>ringing",
		"ringing>busy",
		"busy>busy", // second call rings while busy
		"busy>busy",
		"busy>idle",
		"idle>idle",
		"idle>unregistered",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("transitions\n got %v\nwant %v", got, want)
	}
}

func TestOutgoingCallCountsTowardBusyTrigger(t *testing.T) {
	tr := New(nil)
	tr.SetLine("1001", 1)
	tr.SetDevices("1001", 1)
	tr.Originate("1001", "out")
	if s, _ := tr.Get("1001"); s.State != Busy || !s.Full() {
		t.Fatalf("after dialing out: %+v", s)
	}
	if _, ok := tr.Offer("1001", "in"); ok {
		t.Fatal("incoming call admitted while the line's only call is off hook")
	}
	tr.Ended("1001", "out")
	if s, _ := tr.Get("1001"); s.State != Idle || s.Calls != 0 {
		t.Fatalf("after hang-up: %+v", s)
	}
}

func TestUnknownLine(t *testing.T) {
	tr := New(nil)
	if _, ok := tr.Offer("9999", "c"); ok {
		t.Fatal("call to unknown line admitted")
	}
	if _, ok := tr.Get("9999"); ok {
		t.Fatal("unknown line found")
	}
	tr.SetDevices("9999", 1) // no panic, no line created
	if len(tr.All()) != 0 {
		t.Fatal("SetDevices created a line")
	}
}

// Each call's phase is reported, per line, for the dialog event package
// (B5 over calls: RFC 4235 shows each one).
func TestB5_CallPhasesReported(t *testing.T) {
	tr := New(nil)
	tr.SetLine("1001", 2)
	tr.SetLine("1002", 1)
	var got []CallChange
	tr.SubscribeCalls(func(c CallChange) { got = append(got, c) })
	tr.Between("c1", "1001", "1002")
	tr.Originate("1001", "c1")
	tr.Offer("1002", "c1")
	tr.Answered("1002", "c1")
	tr.Answered("1001", "c1")
	tr.Answered("1001", "c1") // no change: not reported again
	tr.Ended("1002", "c1")
	tr.Ended("1002", "c1") // gone already
	tr.Connected("1001", "c2", false)
	want := []CallChange{
		{DN: "1001", CallID: "c1", Phase: PhaseDialing, Outgoing: true, Remote: "1002"},
		{DN: "1002", CallID: "c1", Phase: PhaseRinging, Remote: "1001"},
		{DN: "1002", CallID: "c1", Phase: PhaseConnected, Remote: "1001"},
		{DN: "1001", CallID: "c1", Phase: PhaseConnected, Outgoing: true, Remote: "1002"},
		{DN: "1002", CallID: "c1", Phase: PhaseEnded, Remote: "1001"},
		{DN: "1001", CallID: "c2", Phase: PhaseConnected},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if s, _ := tr.Get("1001"); s.State != Busy || s.Calls != 2 {
		t.Errorf("1001 %+v", s)
	}
	if n := len(tr.Calls("1001")); n != 2 {
		t.Errorf("%d calls of 1001, want 2", n)
	}
	tr.Ended("1001", "c1")
	tr.Between("c3", "1003", "1002")
	tr.Offer("1002", "c3")
	tr.Offer("1002", "c4") // refused: full
	if len(tr.parties) != 1 || len(tr.refs) != 2 {
		t.Errorf("parties %v refs %v: a call's parties outlive it", tr.parties, tr.refs)
	}
}
