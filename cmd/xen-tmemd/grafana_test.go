package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dashboardFile is the Grafana dashboard for the daemon's metrics.
const dashboardFile = "../../docs/grafana/xen-tmemd.json"

// grafanaPanel is the part of a Grafana panel the test reads.
type grafanaPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's panels
}

// TestGrafanaDashboard: docs/grafana/xen-tmemd.json is valid JSON, its
// panels are well formed, every metric it queries is one the daemon
// exports (metrics.go), and it shows what an administrator looks for.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string         `json:"title"`
		UID        string         `json:"uid"`
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("title %q, uid %q, %d panels", dash.Title, dash.UID, len(dash.Panels))
	}

	var all []grafanaPanel
	for _, p := range dash.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	var exprs []string
	ids := map[int]string{}
	for _, p := range all {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: grid position %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource["uid"] != "${datasource}" {
			t.Errorf("panel %q: datasource %v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" || refs[tg.RefID] {
				t.Errorf("panel %q: empty query or repeated refId %q", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, string(v.Query))
	}

	known := metricNames(t)
	used := map[string]bool{}
	name := regexp.MustCompile(`\bxentmem_[a-zA-Z0-9_]+`)
	for _, e := range exprs {
		if strings.Count(e, "(") != strings.Count(e, ")") {
			t.Errorf("unbalanced parentheses in %s", e)
		}
		for _, m := range name.FindAllString(e, -1) {
			if !slices.Contains(known, m) {
				t.Errorf("query uses %s, which metrics.go does not export: %s", m, e)
			}
			used[m] = true
		}
	}
	// What the dashboard is for.
	for _, m := range []string{
		"xentmem_host_memory_bytes", "xentmem_host_zone", "xentmem_host_pressure", "xentmem_domain_tmem_pages",
		"xentmem_pool_gets_total", "xentmem_policy_actions_total", "xentmem_collect_success", "xentmem_collect_duration_seconds",
	} {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
	for _, m := range known {
		if !used[m] {
			t.Logf("not on the dashboard: %s", m)
		}
	}
}
