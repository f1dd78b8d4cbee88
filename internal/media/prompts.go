package media

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Prompt names. Each exists for every locale under prompts/<locale>/ as
// an 8 kHz mono 16-bit WAV, made by scripts/gen-prompts.sh.
const (
	PromptBusyOffer      = "busy_offer"      // B busy; press 5 for a call back (CCBS, F28)
	PromptNoAnswerOffer  = "noanswer_offer"  // B does not answer; press 5 (CCNR, F30)
	PromptLoggedOutOffer = "loggedout_offer" // B not available; press 5 (CCNL, F28)
	PromptActivated      = "activated"       // request accepted, goodbye
	PromptConnecting     = "connecting"      // recall answered, dialling B (F29)
	PromptNotPossible    = "not_possible"    // no call back for this number
	PromptCallbackAlert  = "callback_alert"  // chime of F32 "Callback Audio Notification File Name"
)

// DefaultLocale is the fallback of Prompt.
const DefaultLocale = "en"

//go:embed prompts/*/*.wav
var promptFS embed.FS

// ErrNoPrompt is returned for a prompt name that does not exist.
var ErrNoPrompt = errors.New("media: no such prompt")

var promptCache sync.Map // "locale/name" -> []int16

// PromptNames lists every prompt.
func PromptNames() []string {
	return []string{PromptBusyOffer, PromptNoAnswerOffer, PromptLoggedOutOffer,
		PromptActivated, PromptConnecting, PromptNotPossible, PromptCallbackAlert}
}

// PromptLocales lists the locales with embedded prompts.
func PromptLocales() []string {
	ents, _ := fs.ReadDir(promptFS, "prompts")
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// normalizeLocale maps "de-DE", "zh_CN", "ko-KR", "cmn" to the prompt
// folder name.
func normalizeLocale(locale string) string {
	l := strings.ToLower(strings.TrimSpace(locale))
	if i := strings.IndexAny(l, "-_."); i >= 0 {
		l = l[:i]
	}
	if l == "cmn" {
		return "zh"
	}
	return l
}

// Prompt returns the samples of a prompt in locale, or in English when the
// locale has no such prompt (F34). The slice is shared by all callers and
// must not be modified.
func Prompt(locale, name string) ([]int16, error) {
	if strings.ContainsAny(name, "/\\.") || name == "" {
		return nil, fmt.Errorf("%w: %q", ErrNoPrompt, name)
	}
	for _, l := range []string{normalizeLocale(locale), DefaultLocale} {
		key := l + "/" + name
		if v, ok := promptCache.Load(key); ok {
			return v.([]int16), nil
		}
		b, err := promptFS.ReadFile(path.Join("prompts", l, name+".wav"))
		if err != nil {
			continue
		}
		s, err := DecodeWAV(b)
		if err != nil {
			return nil, fmt.Errorf("media: prompt %s: %w", key, err)
		}
		v, _ := promptCache.LoadOrStore(key, s)
		return v.([]int16), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrNoPrompt, name)
}

// MaxSoundFile bounds a sound file Sound reads (10 MB is over ten minutes
// of 8 kHz audio).
const MaxSoundFile = 10 << 20

// Sound returns a configured sound: the name of a built-in prompt (in the
// default locale; the Call Back alert is the same chime in every one) or
// the path of an 8 kHz mono 16-bit WAV file (F32 "Callback Audio
// Notification File Name").
func Sound(name string) ([]int16, error) {
	if slices.Contains(PromptNames(), name) {
		return Prompt(DefaultLocale, name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("media: sound %q is neither a built-in prompt (%s) nor a readable file: %w",
			name, strings.Join(PromptNames(), ", "), err)
	}
	defer f.Close()
	s, err := ReadWAV(io.LimitReader(f, MaxSoundFile+1))
	if err != nil {
		return nil, fmt.Errorf("media: sound %q: %w", name, err)
	}
	if len(s)*2 > MaxSoundFile {
		return nil, fmt.Errorf("media: sound %q: longer than %d MB", name, MaxSoundFile>>20)
	}
	return s, nil
}
