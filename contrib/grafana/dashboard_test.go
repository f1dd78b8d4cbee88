// Package grafana holds callbackd.json, a Grafana dashboard for the
// metrics callbackd exports at /metrics. This test keeps it from rotting:
// every metric its PromQL queries name, and every label they group by,
// is one the server registers.
package grafana

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/app"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/store/sqlite"
)

// exported starts a real server (SIP on a loopback port nobody calls) and
// returns the metrics it registers, with their label names.
func exported(t *testing.T) map[string][]string {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = []string{"udp:127.0.0.1:0", "tcp:127.0.0.1:0"}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "callbackd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := app.New(cfg, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	srv.WaitServing(wait)
	return srv.Metrics.Names()
}

// promql splits a PromQL expression into the metric names it selects and
// the labels it groups by. Enough PromQL for a dashboard: selectors with
// {matchers}, [ranges], functions, aggregations with by/without, Grafana's
// $variables.
var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promVariables = regexp.MustCompile(`\$\{?\w+\}?`)
	promNumbers   = regexp.MustCompile(`\b\d+(?:\.\d+)?(?:ms|[smhdwy])?\b`)
	promGrouping  = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	promIdent     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`)
	promKeywords  = []string{"and", "or", "unless", "bool", "offset", "inf", "nan"}
)

func promql(expr string) (metrics, labels []string) {
	e := promStrings.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promVariables.ReplaceAllString(e, " ")
	e = promNumbers.ReplaceAllString(e, " ")
	for _, m := range promGrouping.FindAllStringSubmatch(e, -1) {
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
	}
	e = promGrouping.ReplaceAllString(e, " ")
	for _, m := range promIdent.FindAllStringSubmatch(e, -1) {
		name := strings.TrimRight(m[0], " \t(")
		if m[1] != "" || slices.Contains(promKeywords, strings.ToLower(name)) {
			continue // a function or aggregation, or a keyword
		}
		metrics = append(metrics, name)
	}
	return metrics, labels
}

func TestPromQLParser(t *testing.T) {
	m, l := promql(`sum by (kind, reason) (rate(callbackd_auth_failures_total{instance=~"$instance",x="a}b"}[$__rate_interval])) / on(instance) go_goroutines offset 5m`)
	if !slices.Equal(m, []string{"callbackd_auth_failures_total", "go_goroutines"}) || !slices.Equal(l, []string{"kind", "reason", "instance"}) {
		t.Errorf("metrics %v labels %v", m, l)
	}
}

// TestF37_GrafanaDashboard: contrib/grafana/callbackd.json is a dashboard
// whose every query selects metrics the server exports, grouped by labels
// they have (or the target labels Prometheus adds), and which covers what
// an operator looks at.
func TestF37_GrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("callbackd.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string
		UID        string
		Panels     []panel
		Templating struct {
			List []struct {
				Name  string
				Query any
			}
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("callbackd.json is not JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("callbackd.json: title %q uid %q, %d panels", dash.Title, dash.UID, len(dash.Panels))
	}
	names := exported(t)
	// The check itself catches a rotten query.
	if p, _ := check([]string{`sum by (outcome) (rate(callbackd_calls_totl[5m]))`, `sum by (cause) (callbackd_lines)`}, names); len(p) != 2 {
		t.Errorf("a misspelt metric and label: %q, want 2 problems", p)
	}

	var exprs []string
	for _, p := range flatten(dash.Panels) {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q: a target without expr", p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			exprs = append(exprs, labelValues(t, q["query"]))
		} else if s, ok := v.Query.(string); ok && strings.HasPrefix(s, "label_values(") {
			exprs = append(exprs, labelValues(t, s))
		}
	}

	problems, used := check(exprs, names)
	for _, p := range problems {
		t.Error(p)
	}
	// What the dashboard is for (issue 18).
	for _, want := range []string{
		"callbackd_calls_total", "callbackd_registrations", "callbackd_lines", "callbackd_callback_requests",
		"callbackd_callback_notifications_total", "callbackd_callback_failures_total", "callbackd_sip_messages_total",
		"callbackd_auth_failures_total", "callbackd_auth_throttled_total", "callbackd_rtp_packets_late_total",
		"callbackd_rtp_foreign_packets_total", "callbackd_sip_tcp_refused_total", "process_resident_memory_bytes", "go_goroutines",
	} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
	t.Logf("%d queries, %d metrics of %d exported", len(exprs), len(used), len(names))
}

// check returns what is wrong with the queries: a metric the server does
// not export, a label its metrics do not have; and the metrics used.
func check(exprs []string, names map[string][]string) (problems []string, used map[string]bool) {
	// Prometheus adds these to every series it scrapes.
	target := []string{"instance", "job"}
	used = map[string]bool{}
	for _, e := range exprs {
		ms, ls := promql(e)
		if len(ms) == 0 {
			problems = append(problems, fmt.Sprintf("query %q selects no metric", e))
		}
		for _, m := range ms {
			labels, ok := names[m]
			if !ok {
				problems = append(problems, fmt.Sprintf("query %q uses %s, which the server does not export", e, m))
				continue
			}
			used[m] = true
			for _, l := range ls {
				if !slices.Contains(labels, l) && !slices.Contains(target, l) && !anyHas(names, ms, l) {
					problems = append(problems, fmt.Sprintf("query %q groups by %q, a label %s does not have (it has %v)", e, l, m, labels))
				}
			}
		}
	}
	return problems, used
}

// anyHas: a label one of the expression's other metrics has (a query with
// two metrics may group each by its own labels).
func anyHas(names map[string][]string, ms []string, l string) bool {
	for _, m := range ms {
		if slices.Contains(names[m], l) {
			return true
		}
	}
	return false
}

// labelValues turns a variable's label_values(METRIC, label) into a query
// on METRIC grouped by label.
func labelValues(t *testing.T, q any) string {
	s, _ := q.(string)
	m := regexp.MustCompile(`^label_values\(\s*([^,]+),\s*(\w+)\s*\)$`).FindStringSubmatch(s)
	if m == nil {
		t.Errorf("variable query %q: want label_values(METRIC, label)", s)
		return ""
	}
	return "count by (" + m[2] + ") (" + m[1] + ")"
}

type panel struct {
	Type    string
	Title   string
	Targets []struct{ Expr string }
	Panels  []panel // a collapsed row's
}

func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}
