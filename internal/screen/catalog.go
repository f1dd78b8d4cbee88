package screen

// The catalogues: one message file per locale in locales/, like the Cisco
// "Call Back Dictionary" (seed 003) that the service reads per installed
// locale. They are embedded in the binary and loaded once, at package init,
// with go-i18n (a Bundle whose default language is English, TOML unmarshalled
// by go-toml): go-i18n finds each message for each locale, falling back to
// English for a message a locale lacks. Each message is then compiled here
// once, so that rendering a screen is a few string copies (see render).
//
// Message IDs:
//   - screen.<Kind> one per screen kind (None has none: it closes the screen);
//   - key.<Key>     the softkey labels (CallBack, Dial, Cancel, Exit, OK);
//   - console.*     the web phone console and admin page texts (UI);
//   - time.layout   the Go time layout of {{.Time}} (TimeLayout). It is a
//     message rather than a table in Go so that a locale is one file: adding
//     a locale, or changing how it writes dates, touches no code.
//
// Placeholders are go-i18n template fields: {{.DN}} (Screen.DN), {{.Old}}
// (Screen.OldDN), {{.Time}} (Screen.At in the locale's time.layout).
//
// Where the sentences come from (each file says it per message):
//   - en: seed 002 (F4, F12, the softkeys) and the error messages that seeds
//     000/001 print in English (F2, F6, F7, F8). Ours: AvailableDND (worded
//     after F22's zh/ko sentence), AvailableEnded (F18), ReplaceAvailable (F26:
//     says what Cisco forgets), Deactivated, Expired (F19), the console texts.
//     The en sentences are asserted byte for byte by other packages' tests.
//   - zh: seed 000's words (回呼, 拨号, 取消, 有空, 激活); the DND-Reject
//     notification is seed 000's sentence, kept exactly; KeyNotActive is seed
//     000's heading (键未激活); the other screens are ours, built on the
//     seed's headings for the English error messages. 退出/确定 are ours.
//   - ko: likewise from seed 001 (콜백, 다이얼, 취소, 활성화); the DND-Reject
//     notification is seed 001's sentence, kept exactly; KeyNotActive is the
//     seed's heading (키가 활성화 상태가 아님). 종료/확인 are ours.
//   - de: ours (UCware's language, seed 004, gives no screen text), in the
//     style of the English ones.
//
// Nothing here panics: a message that is missing or does not compile falls
// back to English and is listed in loadProblems, which a test requires to be
// empty.

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	i18ntemplate "github.com/nicksnyder/go-i18n/v2/i18n/template"
	"github.com/pelletier/go-toml/v2"
	"golang.org/x/text/language"
)

//go:embed locales/active.*.toml
var files embed.FS

// defaultLocale is go-i18n's default language: the fallback of every message.
const defaultLocale = "en"

// keyNames are the softkeys that have a label (key.<name>).
var keyNames = []string{KeyCallBack, KeyDial, KeyCancel, KeyExit, KeyOK}

// uiIDs are the console and admin page texts (UI).
var uiIDs = []string{
	"console.title", "console.noScreen", "console.connected", "console.disconnected",
	"console.line", "console.locale", "console.state",
	"console.state.idle", "console.state.ringing", "console.state.busy", "console.state.unregistered",
	"console.error.unauthorized", "console.error.failed",
}

const timeLayoutID = "time.layout"

func screenID(k Kind) string { return "screen." + k.String() }

// messageIDs lists every message a catalogue must have.
func messageIDs() []string {
	ids := []string{timeLayoutID}
	for k := None + 1; k < numKinds; k++ {
		ids = append(ids, screenID(k))
	}
	for _, k := range keyNames {
		ids = append(ids, "key."+k)
	}
	return append(ids, uiIDs...)
}

// catalogue is one locale, compiled.
type catalogue struct {
	name    string
	layout  string
	screens [numKinds]*text
	labels  map[string]string
	ui      map[string]string
}

var (
	catalogues   map[string]*catalogue // by Normalize'd name
	localeNames  []string              // sorted
	loadProblems []string              // empty when every file is complete and compiles
)

func init() {
	catalogues, localeNames, loadProblems = load(files)
}

// load reads the message files locales/active.<locale>.toml of fsys. The
// returned catalogues are always usable: whatever a locale lacks, or gets
// wrong, is English; problems says what and where.
func load(fsys fs.FS) (cats map[string]*catalogue, names []string, problems []string) {
	bundle := i18n.NewBundle(language.English)
	bundle.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	paths, _ := fs.Glob(fsys, "locales/active.*.toml")
	names = []string{defaultLocale}
	for _, p := range paths {
		name := strings.TrimSuffix(strings.TrimPrefix(path.Base(p), "active."), ".toml")
		buf, err := fs.ReadFile(fsys, p)
		if err == nil {
			_, err = bundle.ParseMessageFileBytes(buf, p)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", p, err))
		}
		if name != defaultLocale {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)

	// English first: the others fall back to its compiled messages.
	cats = map[string]*catalogue{}
	en := compile(bundle, defaultLocale, nil, &problems)
	cats[defaultLocale] = en
	for _, name := range names {
		if name != defaultLocale {
			cats[name] = compile(bundle, name, en, &problems)
		}
	}
	return cats, names, problems
}

// compile builds one locale's catalogue; en is nil when it is English.
func compile(bundle *i18n.Bundle, name string, en *catalogue, problems *[]string) *catalogue {
	loc := i18n.NewLocalizer(bundle, name)
	// source returns the message's text as written, not executed: go-i18n
	// picks the locale's message or English's.
	source := func(id string) string {
		src, tag, err := loc.LocalizeWithTag(&i18n.LocalizeConfig{MessageID: id, TemplateParser: i18ntemplate.IdentityParser{}})
		var nf *i18n.MessageNotFoundErr
		switch {
		case err == nil:
		case errors.As(err, &nf) && src != "":
			*problems = append(*problems, fmt.Sprintf("%s: %s missing, falls back to %s", name, id, tag))
		default:
			*problems = append(*problems, fmt.Sprintf("%s: %s: %v", name, id, err))
		}
		return src
	}
	fail := func(id, src string, err error) {
		if src != "" { // else source said so
			*problems = append(*problems, fmt.Sprintf("%s: %s: %v", name, id, err))
		}
	}

	c := &catalogue{name: name, labels: map[string]string{}, ui: map[string]string{}}
	c.layout = source(timeLayoutID)
	if c.layout == "" || c.layout == (time.Time{}).Format(c.layout) {
		fail(timeLayoutID, c.layout, fmt.Errorf("%q is not a time layout", c.layout))
		c.layout = "15:04 01/02/2006"
		if en != nil {
			c.layout = en.layout
		}
	}
	c.screens[None] = &text{}
	for k := None + 1; k < numKinds; k++ {
		id := screenID(k)
		src := source(id)
		t, err := newText(src)
		if err != nil {
			fail(id, src, err)
			t = &text{parts: []part{{lit: id}}, size: len(id)}
			if en != nil {
				t = en.screens[k]
			}
		}
		c.screens[k] = t
	}
	// Labels and UI texts are rendered now, once: UI gets "{dn}" for
	// {{.DN}} (the page's script fills it in), labels have no placeholder.
	show := func(id string, fallback func() string) string {
		src := source(id)
		t, err := newText(src)
		if err != nil {
			fail(id, src, err)
			return fallback()
		}
		return t.render(data{DN: "{dn}", Old: "{old}", Time: "{time}"})
	}
	for _, k := range keyNames {
		c.labels[k] = show("key."+k, func() string {
			if en != nil {
				return en.labels[k]
			}
			return k
		})
	}
	for _, id := range uiIDs {
		c.ui[id] = show(id, func() string {
			if en != nil {
				return en.ui[id]
			}
			return id
		})
	}
	return c
}

// data is what a message's template sees.
type data struct {
	DN   string // {{.DN}}
	Old  string // {{.Old}}
	Time string // {{.Time}}
}

// text is a compiled message. Nearly all are plain text with {{.DN}},
// {{.Old}}, {{.Time}}: parts, rendered by copying. A message that uses more
// of the template language (go-i18n allows it) keeps its parsed template.
type text struct {
	parts    []part
	size     int  // bytes of the literal parts
	usesTime bool // some part is {{.Time}}: format At only then
	tmpl     *template.Template
}

type field uint8

const (
	literal field = iota
	fieldDN
	fieldOld
	fieldTime
)

var fields = map[string]field{"DN": fieldDN, "Old": fieldOld, "Time": fieldTime}

type part struct {
	field field
	lit   string
}

// newText parses src the way go-i18n does (text/template, {{ }}) and checks
// that it executes.
func newText(src string) (*text, error) {
	if src == "" {
		return nil, errors.New("empty or missing message")
	}
	tmpl, err := template.New("").Parse(src)
	if err != nil {
		return nil, err
	}
	t := &text{}
	if !t.flatten(tmpl.Tree.Root) {
		t = &text{tmpl: tmpl}
	}
	// Render a sample to catch what only execution finds (an unknown field).
	if _, err := t.execute(data{DN: "1", Old: "2", Time: "3"}); err != nil {
		return nil, err
	}
	return t, nil
}

// flatten turns a template of text and {{.Field}} actions into parts; false
// if it has anything else.
func (t *text) flatten(root *parse.ListNode) bool {
	for _, n := range root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			t.parts = append(t.parts, part{lit: string(n.Text)})
			t.size += len(n.Text)
		case *parse.ActionNode:
			if len(n.Pipe.Decl) != 0 || len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) != 1 {
				return false
			}
			fn, ok := n.Pipe.Cmds[0].Args[0].(*parse.FieldNode)
			if !ok || len(fn.Ident) != 1 {
				return false
			}
			f, ok := fields[fn.Ident[0]]
			if !ok {
				return false // let execution report the unknown field
			}
			t.parts = append(t.parts, part{field: f})
			t.usesTime = t.usesTime || f == fieldTime
		default:
			return false
		}
	}
	return true
}

func (t *text) execute(d data) (string, error) {
	if t.tmpl == nil {
		return t.fill(d.DN, d.Old, []byte(d.Time)), nil
	}
	var b strings.Builder
	err := t.tmpl.Execute(&b, d)
	return b.String(), err
}

// render fills in the parts, with the time already written.
func (t *text) render(d data) string { return t.fill(d.DN, d.Old, []byte(d.Time)) }

// fill is render for Screen.Text: tm is At, formatted into the caller's
// buffer. For a parsed template it cannot fail: newText executed it once.
func (t *text) fill(dn, old string, tm []byte) string {
	if t.tmpl != nil {
		s, _ := t.execute(data{DN: dn, Old: old, Time: string(tm)})
		return s
	}
	n := t.size
	for _, p := range t.parts {
		switch p.field {
		case fieldDN:
			n += len(dn)
		case fieldOld:
			n += len(old)
		case fieldTime:
			n += len(tm)
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range t.parts {
		switch p.field {
		case literal:
			b.WriteString(p.lit)
		case fieldDN:
			b.WriteString(dn)
		case fieldOld:
			b.WriteString(old)
		case fieldTime:
			b.Write(tm)
		}
	}
	return b.String()
}

// lookup is the catalogue of locale; English for one without.
func lookup(locale string) *catalogue {
	if c, ok := catalogues[Normalize(locale)]; ok {
		return c
	}
	return catalogues[defaultLocale]
}

// Normalize maps a locale as configured or sent by a phone ("zh-CN", "ko_KR",
// "DE", "en-US") to the catalogue it uses ("zh", "ko", "de", "en"): the
// language subtag, case-insensitively. A language without a catalogue,
// and "", give "en". Every zh is simplified Chinese (the only zh catalogue).
func Normalize(locale string) string {
	lang := locale
	if i := strings.IndexAny(lang, "-_"); i >= 0 {
		lang = lang[:i]
	}
	for _, name := range localeNames {
		if strings.EqualFold(lang, name) {
			return name
		}
	}
	return defaultLocale
}

// Locales lists the locales that have a catalogue, sorted.
func Locales() []string { return slices.Clone(localeNames) }

// Label is the label of softkey key (KeyCallBack, KeyDial, KeyCancel,
// KeyExit, KeyOK) in locale. An unknown key is returned as it is.
func Label(locale, key string) string {
	if l, ok := lookup(locale).labels[key]; ok {
		return l
	}
	return key
}

// UI returns the web phone console and admin page texts of locale by message
// ID ("console.title", "console.state.busy", ...). Placeholders come as
// "{dn}" for the page to fill in ("Phone {dn}"). The map is the caller's.
func UI(locale string) map[string]string { return maps.Clone(lookup(locale).ui) }

// TimeLayout is the Go time layout in which locale writes the time a party
// became available (the screens' {{.Time}}).
func TimeLayout(locale string) string { return lookup(locale).layout }
