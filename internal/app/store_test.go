package app

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/store/postgres"
	"github.com/callbackd/callbackd/internal/store/sqlite"
)

// [store] driver chooses the backend; one not built is refused by name.
func TestStoreBackend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callbackd.db")
	be, err := StoreBackend(config.Store{Driver: "sqlite", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if be != (sqlite.Backend{Path: path}) {
		t.Errorf("sqlite: got %#v", be)
	}
	url := "postgres://cb@127.0.0.1:5432/cb"
	if be, err := StoreBackend(config.Store{Driver: "postgres", URL: url}); err != nil || be != (postgres.Backend{URL: url}) {
		t.Errorf("postgres: got %#v, %v", be, err)
	}
	for _, driver := range []string{"mysql", ""} {
		if _, err := StoreBackend(config.Store{Driver: driver, Path: path}); err == nil || !strings.Contains(err.Error(), `"`+driver+`"`) {
			t.Errorf("driver %q: %v, want it refused by name", driver, err)
		}
	}
}
