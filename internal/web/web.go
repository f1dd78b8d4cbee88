// Package web serves the browser side of callbackd (B4): the web phone
// console at /phone/{dn}, the admin page at /admin and their assets under
// /static/. The pages are static files embedded in the binary; everything
// they show comes from the HTTP API (/api/v1, package api) and its
// server-sent events, so this package knows nothing of the engine.
//
// The pages use no framework and no external resource (no CDN): plain
// HTML, CSS and JavaScript. A Content-Security-Policy allowing only this
// origin keeps it that way.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/callbackd/callbackd/internal/dialplan"
)

//go:embed pages static
var files embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes by file extension (mime.TypeByExtension depends on the
// host's mime tables; these do not).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".ico":  "image/x-icon",
}

// csp allows this origin only: no inline script or style, no other host.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves GET (and HEAD) /phone/{dn}, /admin and /static/...;
// anything else is 404 (405 for other methods on those paths). Mount it at
// "/" beside the API, or at exactly those patterns.
func Handler() http.Handler {
	pages := load("pages")
	static := load("static")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /phone/{dn}", func(w http.ResponseWriter, r *http.Request) {
		if !dialplan.IsDN(r.PathValue("dn")) {
			http.NotFound(w, r)
			return
		}
		serve(w, r, pages["phone.html"])
	})
	mux.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, pages["admin.html"])
	})
	mux.HandleFunc("GET /static/{file...}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := static[r.PathValue("file")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		serve(w, r, a)
	})
	return mux
}

// load reads the files of an embedded folder (flat: no sub-folders).
func load(dir string) map[string]*asset {
	out := map[string]*asset{}
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := fs.ReadFile(files, dir+"/"+e.Name())
		if err != nil {
			panic(err)
		}
		ct, ok := contentTypes[path.Ext(e.Name())]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		out[e.Name()] = &asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out
}

func serve(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	// Revalidate every time: the pages change with the binary, and the
	// ETag makes the check cheap.
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(a.contentType, "text/html") {
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
	}
	// ServeContent answers If-None-Match (304), HEAD and ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
