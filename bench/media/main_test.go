package main

import (
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/media"
)

// Two relayed calls for one second: media must get through both ways.
// Only counts are checked, never timings: how many packets are sent is
// fixed by the schedule (50 slots per phone in 1 s, whatever the offset
// within the first frame), how late they are is not.
func TestRelayModeBothWays(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a second")
	}
	prompt, err := media.Prompt("en", media.PromptBusyOffer)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runRelay(relayConfig{calls: 2, dur: time.Second, late: media.DefaultLateAfter, senders: 1, codec: media.PCMU, prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	if res.sent != 2*2*50 {
		t.Errorf("sent %d packets, want %d", res.sent, 2*2*50)
	}
	if res.relayedAB == 0 || res.relayedBA == 0 || res.recv == 0 {
		t.Errorf("relayed A>B %d, B>A %d, received %d: want media both ways", res.relayedAB, res.relayedBA, res.recv)
	}
	if res.relayedAB+res.relayedBA > res.sent || res.recv > res.relayedAB+res.relayedBA {
		t.Errorf("sent %d, relayed %d+%d, received %d: counts out of order", res.sent, res.relayedAB, res.relayedBA, res.recv)
	}
	if res.foreign != 0 || res.noPeer != 0 {
		t.Errorf("relay dropped %d foreign and %d without peer, want none", res.foreign, res.noPeer)
	}
}
