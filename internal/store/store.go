// Package store is what must survive a restart, as the rest of the server
// sees it: the Store interface and its row types (registrations, Call Back
// requests, answered calls, lines and settings changed through the API,
// subscriptions).
// The rows other packages own (requests, calls, lines) are their own JSON,
// so a backend needs no knowledge of their fields.
//
// Backends sit in packages of their own (internal/store/sqlite, the
// embedded default; internal/store/postgres, shared by a cluster); the
// configuration's [store] driver chooses one (internal/app). storetest is the suite every backend passes.
package store

import (
	"context"
	"time"
)

// Registration is one binding of a device (a Contact) to a line (RFC 3261 10.3).
type Registration struct {
	DN        string    // the line
	Contact   string    // the Contact URI the device registered
	Source    string    // ip:port the REGISTER came from (where we send requests)
	Transport string    // UDP or TCP
	CallID    string    // Call-ID of the REGISTER, for CSeq ordering (10.3 step 7)
	CSeq      uint32    //
	UserAgent string    //
	Expires   time.Time // absolute expiry
}

// Request is a stored Call Back request: the engine's own record, kept as JSON
// so the store does not need to know its fields.
type Request struct {
	ID   int64
	Data []byte
}

// Call is an answered call between lines, kept so that a restart can
// still relay its BYE and count it on its lines: the B2BUA's own record,
// as JSON.
type Call struct {
	ID   string // the caller's Call-ID
	Data []byte
}

// Line is a line created, changed or deleted through the API: the
// directory's own record, as JSON; Deleted marks a removed line.
type Line struct {
	DN      string
	Data    []byte
	Deleted bool
}

// Subscription is one SIP subscription (RFC 6665), as notifier or as
// subscriber: the subscription layer's own record (internal/subscription),
// as JSON.
type Subscription struct {
	ID   string
	Data []byte
}

// Store is what the rest of the server needs from persistence. A write
// returns once it is durable ("persisted before it is confirmed").
type Store interface {
	PutRegistration(ctx context.Context, r Registration) error
	DeleteRegistration(ctx context.Context, dn, contact string) error
	// Registrations returns every stored binding, expired ones included
	// (the registrar decides what has expired), by DN then Contact.
	Registrations(ctx context.Context) ([]Registration, error)

	// PutRequest refuses a request without an ID.
	PutRequest(ctx context.Context, r Request) error
	DeleteRequest(ctx context.Context, id int64) error
	// Requests returns every stored request in ID order.
	Requests(ctx context.Context) ([]Request, error)

	PutCall(ctx context.Context, c Call) error
	DeleteCall(ctx context.Context, id string) error
	Calls(ctx context.Context) ([]Call, error)

	// Lines changed through the API: they overlay the configuration file's
	// lines at start (a stored line wins over the file's line of the same
	// DN; Deleted hides it). PutLine refuses a line without a DN; Lines
	// returns them in DN order.
	PutLine(ctx context.Context, l Line) error
	Lines(ctx context.Context) ([]Line, error)

	// Settings changed through the API (service parameters), by name, as JSON.
	PutSetting(ctx context.Context, name string, data []byte) error
	DeleteSetting(ctx context.Context, name string) error
	Settings(ctx context.Context) (map[string][]byte, error)

	// Subscriptions (RFC 6665), either side: PutSubscription refuses one
	// without an ID; Subscriptions returns them in ID order.
	PutSubscription(ctx context.Context, s Subscription) error
	DeleteSubscription(ctx context.Context, id string) error
	Subscriptions(ctx context.Context) ([]Subscription, error)

	// Close finishes the queued writes; a second Close does nothing.
	Close() error
}

// Backend is one kind of store at the place the configuration names
// ([store] driver and its settings): what the server, -backup and
// -check-config do with it.
type Backend interface {
	// Open opens (creating if needed) the store, and refuses one it
	// could not write to, with one line that says why.
	Open() (Store, error)
	// Backup copies the store, safely while a server uses it, into the
	// new file dest.
	Backup(dest string) error
	// CheckWritable says whether the server could keep its store there,
	// creating nothing that stays.
	CheckWritable() error
}
