package media

import (
	"errors"
	"flag"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var genAlert = flag.Bool("gen-alert", false, "write prompts/*/callback_alert.wav from the tone generator (scripts/gen-prompts.sh)")

var wantLocales = []string{"de", "en", "ko", "zh"}

func rms(s []int16) float64 {
	var e float64
	for _, x := range s {
		e += float64(x) * float64(x)
	}
	return math.Sqrt(e / float64(max(len(s), 1)))
}

func TestPromptsComplete(t *testing.T) {
	if got := PromptLocales(); !slices.Equal(got, wantLocales) {
		t.Fatalf("locales %v, want %v", got, wantLocales)
	}
	for _, l := range wantLocales {
		for _, name := range PromptNames() {
			// Read the file itself, not through the English fallback.
			b, err := fs.ReadFile(promptFS, "prompts/"+l+"/"+name+".wav")
			if err != nil {
				t.Errorf("%s/%s: %v", l, name, err)
				continue
			}
			s, err := DecodeWAV(b) // fails unless 8 kHz mono 16-bit
			if err != nil {
				t.Errorf("%s/%s: %v", l, name, err)
				continue
			}
			d := time.Duration(len(s)) * time.Second / SampleRate
			if d < time.Second || d > 12*time.Second {
				t.Errorf("%s/%s lasts %v, want 1 s to 12 s", l, name, d)
			}
			// -40 dBFS; speech normalised to -6 dBFS peak is near -25.
			if r := rms(s); r < 300 {
				t.Errorf("%s/%s RMS %.0f: silent", l, name, r)
			}
		}
	}
}

func TestPromptFallback(t *testing.T) {
	en, err := Prompt("en", PromptBusyOffer)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"fr-FR", "", "xx"} {
		got, err := Prompt(l, PromptBusyOffer)
		if err != nil || !slices.Equal(got, en) {
			t.Errorf("%q: no English fallback (%v)", l, err)
		}
	}
	de, _ := Prompt("de", PromptBusyOffer)
	for _, l := range []string{"de-DE", "DE_at", " de "} {
		if got, _ := Prompt(l, PromptBusyOffer); !slices.Equal(got, de) {
			t.Errorf("%q not mapped to de", l)
		}
	}
	if zh, _ := Prompt("zh", PromptActivated); zh == nil {
		t.Fatal("zh")
	} else if got, _ := Prompt("cmn", PromptActivated); !slices.Equal(got, zh) {
		t.Error("cmn not mapped to zh")
	}
	for _, name := range []string{"nope", "", "../en/busy_offer", "busy_offer.wav"} {
		if _, err := Prompt("en", name); !errors.Is(err, ErrNoPrompt) {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// renderAlert is the committed callback_alert.wav: two rounds of the chime.
func renderAlert(t *testing.T) []int16 {
	p, err := Tone("US", ToneCallbackAlert)
	if err != nil {
		t.Fatal(err)
	}
	return render(NewGenerator(p), 2*samplesOf(p.Cycle()))
}

// TestCallbackAlertPrompt keeps the alert WAVs equal to the tone plan;
// with -gen-alert it writes them.
func TestCallbackAlertPrompt(t *testing.T) {
	want := renderAlert(t)
	if *genAlert {
		for _, l := range wantLocales {
			p := filepath.Join("prompts", l, PromptCallbackAlert+".wav")
			if err := os.WriteFile(p, EncodeWAV(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	for _, l := range wantLocales {
		b, err := fs.ReadFile(promptFS, "prompts/"+l+"/"+PromptCallbackAlert+".wav")
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeWAV(b)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: callback_alert.wav differs from the tone plan; run scripts/gen-prompts.sh (%v)", l, err)
		}
	}
}
