package config

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParse100kLines: the configuration of a start with 100k lines
// (bench/load/run.sh restore 100000 writes such a file): the TOML decode and
// the validation, which every start and every reload pays.
func BenchmarkParse100kLines(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n")
	for i := range 100_000 {
		fmt.Fprintf(&sb, "[[line]]\ndn = \"%d\"\npassword = \"p%d\"\nbusy_trigger = 100\n", 100000+i, i)
	}
	data := []byte(sb.String())
	b.ReportAllocs()
	for b.Loop() {
		c, err := Parse("site.toml", data)
		if err != nil {
			b.Fatal(err)
		}
		if len(c.Lines) != 100_000 {
			b.Fatalf("%d lines", len(c.Lines))
		}
	}
}
