package app

import (
	"fmt"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/store"
	"github.com/callbackd/callbackd/internal/store/postgres"
	"github.com/callbackd/callbackd/internal/store/sqlite"
)

// StoreBackend is the store [store] driver names, at the place the
// configuration gives: what the server opens, -backup copies and
// -check-config checks.
func StoreBackend(c config.Store) (store.Backend, error) {
	switch c.Driver {
	case "sqlite":
		return sqlite.Backend{Path: c.Path}, nil
	case "postgres":
		return postgres.Backend{URL: c.URL}, nil
	}
	// The configuration's validation refuses these first, naming the key.
	return nil, fmt.Errorf(`store.driver %q is not supported (only "sqlite" or "postgres")`, c.Driver)
}

// StoreName is where the store is, as messages may show it: the SQLite
// path, or the PostgreSQL URL with its password hidden.
func StoreName(c config.Store) string {
	if c.Driver == "postgres" {
		return postgres.Redacted(c.URL)
	}
	return c.Path
}
