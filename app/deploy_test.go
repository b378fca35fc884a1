package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/sim"
	"github.com/matryer/is"
)

// notFromChwatch are series the alert rules read from elsewhere: up is
// Prometheus's own per target, node_* is node_exporter (the disk alerts; the
// scrape snippet has its job). The dashboard uses none of them.
var notFromChwatch = map[string]bool{
	"up":                          true,
	"node_filesystem_avail_bytes": true,
}

// The Grafana dashboard and the Prometheus alert rules query only metrics,
// and label values, that a running chwatch serves on /metrics; every alert
// names a runbook entry that exists.
func TestDeployQueriesMatchMetrics(t *testing.T) {
	exposed := scrapeRunningService(t)

	t.Run("grafana dashboard", func(t *testing.T) {
		is := is.New(t)
		raw, err := os.ReadFile("../deploy/grafana/chwatch.json")
		is.NoErr(err)
		var d dashboard
		is.NoErr(json.Unmarshal(raw, &d)) // the dashboard parses
		is.True(d.UID != "" && d.Title != "")
		exprs := d.queries(t)
		is.True(len(exprs) > 10)
		used := map[string]bool{}
		for _, e := range exprs {
			for _, s := range checkExpr(t, e, exposed) {
				used[s.name] = true
				if notFromChwatch[s.name] {
					t.Errorf("dashboard query %q reads %s, which chwatch does not serve", e, s.name)
				}
			}
		}
		for _, name := range []string{"chwatch_api_requests_total", "chwatch_api_budget_remaining", "chwatch_breaker_state", "chwatch_queue_depth"} {
			if !used[name] {
				t.Errorf("the dashboard has no panel for %s", name)
			}
		}
	})

	t.Run("prometheus rules", func(t *testing.T) {
		is := is.New(t)
		rules := readRules(t, "../deploy/prometheus/chwatch.rules.yml")
		is.True(len(rules) > 5)
		anchors := markdownAnchors(t, "../docs/runbook.md")
		for _, r := range rules {
			if len(checkExpr(t, r.expr, exposed)) == 0 {
				t.Errorf("alert %s: expr %q reads no metric", r.name, r.expr)
			}
			file, anchor, _ := strings.Cut(r.runbook, "#")
			if file != "docs/runbook.md" || !anchors[anchor] {
				t.Errorf("alert %s: runbook_url %q is not a heading of docs/runbook.md", r.name, r.runbook)
			}
		}
	})
}

// scrapeRunningService starts `chwatch run` on the simulator, REST workers
// included, as the other end-to-end tests do, and returns its /metrics: every series name with the
// label sets it is served with.
func scrapeRunningService(t *testing.T) map[string][]map[string]string {
	t.Helper()
	s, err := sim.New(sim.Config{Seed: 4, Companies: 200, Events: 300, Backlog: 300, Heartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	cfg := testConfig(t, srv.URL)
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.API.Key = "deploy-test-key" // the REST workers serve their metrics too
	consumer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer consumer.Close()
	cfg.Feed.WebhookURL = consumer.URL // and the change feed
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runService(ctx, cfg, slog.New(slog.DiscardHandler),
			runOptions{startFrom: sim.DefaultFirstTimepoint, onListen: func(a string) { addr <- a }})
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("run stopped before listening: %v", err)
	}
	waitCursor(t, cfg.Database.Path, sim.DefaultFirstTimepoint+299, 30*time.Second)
	// The batch histograms are updated just after the commit that moves
	// the cursor.
	var code int
	var body string
	eventually(t, "the apply histograms", 30*time.Second, func() bool {
		code, body = get(t, base+"/metrics")
		return strings.Contains(body, "chwatch_apply_batch_seconds_count") && strings.Contains(body, "chwatch_apply_latency_seconds_count")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code != 200 {
		t.Fatalf("/metrics answered %d", code)
	}
	exposed := map[string][]map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, labels := parseSample(line)
		exposed[name] = append(exposed[name], labels)
	}
	if len(exposed) == 0 {
		t.Fatal("/metrics served no series")
	}
	return exposed
}

// parseSample splits one line of the Prometheus text format into the series
// name and its labels.
func parseSample(line string) (string, map[string]string) {
	labels := map[string]string{}
	i := strings.IndexAny(line, "{ ")
	if i < 0 || line[i] == ' ' {
		if i < 0 {
			return line, labels
		}
		return line[:i], labels
	}
	name, rest := line[:i], line[i+1:]
	for _, m := range regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(rest[:strings.LastIndex(rest, "}")], -1) {
		labels[m[1]] = m[2]
	}
	return name, labels
}

// checkExpr reports every selector of expr that asks for a series or a label
// value /metrics does not have, and returns the selectors.
func checkExpr(t *testing.T, expr string, exposed map[string][]map[string]string) []selector {
	t.Helper()
	sels, err := selectors(expr)
	if err != nil {
		t.Errorf("query %q: %v", expr, err)
		return nil
	}
	for _, s := range sels {
		series, ok := exposed[s.name]
		switch {
		case notFromChwatch[s.name]:
			continue
		case !ok:
			t.Errorf("query %q reads %s, which /metrics does not serve", expr, s.name)
			continue
		}
		for _, m := range s.matchers {
			if m.label == "instance" || m.label == "job" || strings.Contains(m.value, "$") || (m.op != "=" && m.op != "=~") {
				continue // added by Prometheus, a dashboard variable, or a negative match
			}
			re := regexp.MustCompile("^(?:" + m.value + ")$")
			found := false
			for _, labels := range series {
				if v, ok := labels[m.label]; ok && (m.op == "=" && v == m.value || m.op == "=~" && re.MatchString(v)) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("query %q: no %s series has %s%s%q", expr, s.name, m.label, m.op, m.value)
			}
		}
	}
	return sels
}

// selector is a metric selector in a PromQL expression.
type selector struct {
	name     string
	matchers []matcher
}

type matcher struct{ label, op, value string }

var (
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	promAggregations = map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "group": true,
		"stddev": true, "stdvar": true, "count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true}
	matcherRe = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?`)
)

// selectors finds the metric selectors of a PromQL expression: enough of
// the language for dashboards and alert rules (functions, aggregations with
// by/without, binary operators, ranges, offsets, Grafana's $variables).
func selectors(expr string) ([]selector, error) {
	var out []selector
	skipSpace := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\t' || expr[i] == '\n') {
			i++
		}
		return i
	}
	closing := func(i int, open, close byte) (int, error) { // index after the match of expr[i]
		depth := 0
		for j := i; j < len(expr); j++ {
			switch expr[j] {
			case open:
				depth++
			case close:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %c at %d", open, i)
	}
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '[':
			j, err := closing(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			return nil, fmt.Errorf("a selector without a metric name at %d", i)
		case c == '$':
			i++
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (expr[i] >= '0' && expr[i] <= '9' || expr[i] == '.') {
				i++
			}
			if i < len(expr) && (expr[i] == 'e' || expr[i] == 'E') {
				i++
				if i < len(expr) && (expr[i] == '+' || expr[i] == '-') {
					i++
				}
				for i < len(expr) && expr[i] >= '0' && expr[i] <= '9' {
					i++
				}
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			next := skipSpace(j)
			switch {
			case word == "offset":
				k := next
				for k < len(expr) && isIdent(expr[k]) {
					k++
				}
				i = k
			case promKeywords[word]:
				i = next
				if i < len(expr) && expr[i] == '(' && word != "and" && word != "or" && word != "unless" && word != "bool" {
					k, err := closing(i, '(', ')')
					if err != nil {
						return nil, err
					}
					i = k // a label list, not an expression
				}
			case promAggregations[word] || next < len(expr) && expr[next] == '(':
				i = j // a function or an aggregation: its arguments follow
			default:
				s := selector{name: word}
				i = j
				if next < len(expr) && expr[next] == '{' {
					k, err := closing(next, '{', '}')
					if err != nil {
						return nil, err
					}
					body := expr[next+1 : k-1]
					for strings.TrimSpace(body) != "" {
						m := matcherRe.FindStringSubmatch(body)
						if m == nil {
							return nil, fmt.Errorf("cannot read the label matchers {%s}", expr[next+1:k-1])
						}
						s.matchers = append(s.matchers, matcher{m[1], m[2], m[3]})
						body = body[len(m[0]):]
					}
					i = k
				}
				out = append(out, s)
			}
		default:
			i++
		}
	}
	return out, nil
}

func TestSelectors(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string
	}{
		{`up{job="chwatch"} == 0`, `up{job="chwatch"}`},
		{`sum by (instance, kind) (chwatch_queue_depth{state="dead"}) > 0`, `chwatch_queue_depth{state="dead"}`},
		{`sum(rate(a_total{x=~"1|2"}[$__rate_interval])) by (code) / rate(b_count[5m])`, `a_total{x=~"1|2"} b_count`},
		{`predict_linear(node_fs{job="node",mountpoint="/"}[6h], 24 * 3600) < 0`, `node_fs{job="node",mountpoint="/"}`},
		{`x offset 5m and on (instance) y{a!="b"}`, `x y{a!="b"}`},
		{`process_resident_memory_bytes{instance="$instance"} > 128 * 1024 * 1e6`, `process_resident_memory_bytes{instance="$instance"}`},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			sels, err := selectors(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range sels {
				var ms []string
				for _, m := range s.matchers {
					ms = append(ms, m.label+m.op+`"`+m.value+`"`)
				}
				if len(ms) > 0 {
					got = append(got, s.name+"{"+strings.Join(ms, ",")+"}")
				} else {
					got = append(got, s.name)
				}
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("got %s, want %s", g, tc.want)
			}
		})
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // inside a collapsed row
}

// queries checks the dashboard's layout and returns every PromQL query in
// it: panel targets and template variable queries.
func (d dashboard) queries(t *testing.T) []string {
	t.Helper()
	var out []string
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d is used twice", p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q: gridPos %+v does not fit the 24 columns", p.Title, p.GridPos)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
				t.Errorf("panel %q needs targets and the ${datasource} variable as its data source", p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("panel %q has a target without a query", p.Title)
				}
				out = append(out, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(SELECTOR, LABEL)", v.Name, v.Definition)
			continue
		}
		out = append(out, m[1])
	}
	return out
}

type rule struct{ name, expr, runbook string }

// readRules reads the alert rules file line by line (the file keeps each
// expr on one line; promtool checks it is valid YAML and valid rules).
func readRules(t *testing.T, path string) []rule {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rules []rule
	unquote := func(s string) string { return strings.Trim(strings.TrimSpace(s), `"'`) }
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "- alert:"):
			rules = append(rules, rule{name: unquote(strings.TrimPrefix(line, "- alert:"))})
		case len(rules) == 0:
		case strings.HasPrefix(line, "expr:"):
			e := unquote(strings.TrimPrefix(line, "expr:"))
			if e == "|" || e == ">" || e == "" {
				t.Errorf("alert %s: keep expr on one line", rules[len(rules)-1].name)
			}
			rules[len(rules)-1].expr = e
		case strings.HasPrefix(line, "runbook_url:"):
			rules[len(rules)-1].runbook = unquote(strings.TrimPrefix(line, "runbook_url:"))
		}
	}
	for _, r := range rules {
		if r.expr == "" || r.runbook == "" {
			t.Errorf("alert %s needs an expr and a runbook_url", r.name)
		}
	}
	return rules
}

// markdownAnchors returns the anchors GitHub makes of a file's headings.
func markdownAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	fenced := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if !fenced && strings.HasPrefix(line, "#") {
			h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
			anchors[strings.ReplaceAll(drop.ReplaceAllString(h, ""), " ", "-")] = true
		}
	}
	return anchors
}
