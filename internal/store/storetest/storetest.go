// Package storetest is the suite every store backend passes: what the
// server relies on from store.Store, run through the interface only, so a
// new backend (PostgreSQL) runs the same tests as SQLite.
package storetest

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/store"
)

// Opener opens the same store each time it is called: a second call
// after Close is a restart.
type Opener func() (store.Store, error)

// Run runs the suite; fresh gives, for each test, an Opener of a new,
// empty store.
func Run(t *testing.T, fresh func(t *testing.T) Opener) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, Opener)
	}{
		{"RegistrationsSurviveReopen", registrationsSurviveReopen},
		{"RequestsGroupCommit", requestsGroupCommit},
		{"CallsLinesSettings", callsLinesSettings},
		{"SubscriptionsSurviveReopen", subscriptionsSurviveReopen},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, fresh(t)) })
	}
}

func open(t *testing.T, o Opener) store.Store {
	t.Helper()
	s, err := o()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func registrationsSurviveReopen(t *testing.T, o Opener) {
	ctx := context.Background()
	s := open(t, o)
	exp := time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())
	r := store.Registration{DN: "1001", Contact: "sip:1001@127.0.0.1:5070", Source: "127.0.0.1:5070", Transport: "UDP", CallID: "c1", CSeq: 7, UserAgent: "ua", Expires: exp}
	if err := s.PutRegistration(ctx, r); err != nil {
		t.Fatal(err)
	}
	r2 := r
	r2.Contact = "sip:1001@127.0.0.1:5071"
	if err := s.PutRegistration(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRegistration(ctx, "1001", r2.Contact); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, o)
	defer s.Close()
	got, err := s.Registrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != r {
		t.Fatalf("after reopen got %+v, want [%+v]", got, r)
	}
}

func requestsGroupCommit(t *testing.T, o Opener) {
	s := open(t, o)
	defer s.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 1; i <= 500; i++ {
		wg.Add(1)
		go func(id int64) {
			defer wg.Done()
			if err := s.PutRequest(ctx, store.Request{ID: id, Data: []byte(`{"x":1}`)}); err != nil {
				t.Error(err)
			}
		}(int64(i))
	}
	wg.Wait()
	if err := s.DeleteRequest(ctx, 3); err != nil {
		t.Fatal(err)
	}
	got, err := s.Requests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 499 || got[0].ID != 1 || got[2].ID != 4 {
		t.Fatalf("got %d requests, first ids %v", len(got), got[:3])
	}
	if err := s.PutRequest(ctx, store.Request{}); err == nil {
		t.Fatal("request without id accepted")
	}
}

// The other records round-trip, survive a restart, and are forgotten
// when deleted.
func callsLinesSettings(t *testing.T, o Opener) {
	ctx := context.Background()
	s := open(t, o)
	must := mustFor(t)
	must(s.PutCall(ctx, store.Call{ID: "a", Data: []byte(`{"a":1}`)}))
	must(s.PutCall(ctx, store.Call{ID: "b", Data: []byte(`{"b":1}`)}))
	must(s.DeleteCall(ctx, "a"))
	must(s.PutLine(ctx, store.Line{DN: "1002", Data: []byte(`{"dn":"1002"}`)}))
	must(s.PutLine(ctx, store.Line{DN: "1001", Deleted: true}))
	if err := s.PutLine(ctx, store.Line{Data: []byte(`{}`)}); err == nil {
		t.Error("line without dn accepted")
	}
	must(s.PutSetting(ctx, "callback", []byte(`{"t3":"20s"}`)))
	must(s.PutSetting(ctx, "gone", []byte(`{}`)))
	must(s.DeleteSetting(ctx, "gone"))
	must(s.Close())

	s = open(t, o)
	defer s.Close()
	calls, err := s.Calls(ctx)
	must(err)
	if len(calls) != 1 || calls[0].ID != "b" || !bytes.Equal(calls[0].Data, []byte(`{"b":1}`)) {
		t.Errorf("calls %+v, want call b only", calls)
	}
	lines, err := s.Lines(ctx)
	must(err)
	if len(lines) != 2 || lines[0].DN != "1001" || !lines[0].Deleted || lines[1].DN != "1002" || lines[1].Deleted ||
		!bytes.Equal(lines[1].Data, []byte(`{"dn":"1002"}`)) {
		t.Errorf("lines %+v, want 1001 deleted then 1002", lines)
	}
	settings, err := s.Settings(ctx)
	must(err)
	if len(settings) != 1 || !bytes.Equal(settings["callback"], []byte(`{"t3":"20s"}`)) {
		t.Errorf("settings %q, want callback only", settings)
	}
}

// Subscriptions round-trip, are replaced by ID, survive a restart and are
// forgotten when deleted.
func subscriptionsSurviveReopen(t *testing.T, o Opener) {
	ctx := context.Background()
	s := open(t, o)
	must := mustFor(t)
	must(s.PutSubscription(ctx, store.Subscription{ID: "b", Data: []byte(`{"cseq":1}`)}))
	must(s.PutSubscription(ctx, store.Subscription{ID: "b", Data: []byte(`{"cseq":2}`)}))
	must(s.PutSubscription(ctx, store.Subscription{ID: "a", Data: []byte(`{"a":1}`)}))
	must(s.PutSubscription(ctx, store.Subscription{ID: "c", Data: []byte(`{}`)}))
	must(s.DeleteSubscription(ctx, "c"))
	if err := s.PutSubscription(ctx, store.Subscription{Data: []byte(`{}`)}); err == nil {
		t.Error("subscription without id accepted")
	}
	must(s.Close())

	s = open(t, o)
	defer s.Close()
	got, err := s.Subscriptions(ctx)
	must(err)
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" || !bytes.Equal(got[1].Data, []byte(`{"cseq":2}`)) {
		t.Errorf("subscriptions %q, want a then b (cseq 2)", got)
	}
}

// mustFor fails t at once on an error.
func mustFor(t *testing.T) func(error) {
	return func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}
