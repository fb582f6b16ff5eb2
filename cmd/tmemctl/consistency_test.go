package main

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
)

// rawRecord is one LIST line split the simplest way: "X=k:v,k:v,...". It
// deliberately does not use xenctl's parser, so that the check below is
// independent of the code under test.
type rawRecord struct {
	tag  byte
	keys map[string]int64
}

func parseRaw(t *testing.T, text string) []rawRecord {
	t.Helper()
	var out []rawRecord
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		r := rawRecord{tag: line[0], keys: map[string]int64{}}
		for _, item := range strings.Split(line[2:], ",") {
			k, v, ok := strings.Cut(item, ":")
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				if u, err := strconv.ParseUint(v, 16, 64); err == nil && (k == "U0" || k == "U1") {
					n = int64(u)
				} else if k != "PT" {
					t.Fatalf("%s: %q: %v", line, item, err)
				}
			}
			r.keys[k] = n
		}
		out = append(out, r)
	}
	return out
}

// TestNumbersMatchRawList checks that every number of -o json and -o table
// is the raw LIST's (or the documented sum, MiB or ratio of it), for every
// release with tmem and both backends.
func TestNumbersMatchRawList(t *testing.T) {
	for _, v := range goldenVersions[:4] {
		s := newScenario(t, v)
		for _, mode := range []string{modeDirect, modePipe} {
			t.Run(v+"/"+mode, func(t *testing.T) {
				raw := s.run(t, mode, "tmem-list", "-l", "-a")
				js := s.run(t, mode, "tmem-list", "-a", "-o", "json")
				tb := s.run(t, mode, "tmem-list", "-a", "-o", "table")
				if raw.code != 0 || js.code != 0 || tb.code != 0 {
					t.Fatalf("exit codes %d %d %d: %s%s%s", raw.code, js.code, tb.code, raw.stderr, js.stderr, tb.stderr)
				}
				recs := parseRaw(t, raw.stdout)
				var doc listJSON
				if err := json.Unmarshal([]byte(js.stdout), &doc); err != nil {
					t.Fatal(err)
				}
				// On generation A control calls go through tmem_op and count
				// in Tt: the JSON's own LIST is one more.
				if v == "4.1.0" {
					recs[0].keys["Tt"]++
				}
				checkJSON(t, recs, &doc)
				checkTable(t, recs, tb.stdout)
			})
		}
	}
}

// clientSum is a C= record with its P= records and their sums.
type clientSum struct {
	c                          rawRecord
	pools                      []rawRecord
	puts, gets, hits, goodPuts int64
}

func sums(recs []rawRecord) []clientSum {
	var out []clientSum
	for _, r := range recs {
		switch r.tag {
		case 'C':
			out = append(out, clientSum{c: r})
		case 'P':
			cs := &out[len(out)-1]
			cs.pools = append(cs.pools, r)
			cs.puts += r.keys["pt"]
			cs.goodPuts += r.keys["ps"]
			cs.gets += r.keys["gt"]
			cs.hits += r.keys["gs"]
		}
	}
	return out
}

func checkJSON(t *testing.T, recs []rawRecord, doc *listJSON) {
	t.Helper()
	g := recs[0]
	if g.tag != 'G' || doc.Global == nil {
		t.Fatal("no G= record or no global object")
	}
	eq := func(what string, got, want int64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %d, raw LIST says %d", what, got, want)
		}
	}
	eq("global.total_ops", int64(doc.Global.TotalOps), g.keys["Tt"])
	eq("global.evicted", int64(doc.Global.Evicted), g.keys["Et"])
	eq("global.eph_pages", doc.Global.EphPages, g.keys["Ec"])
	eq("global.free_pages", int64(doc.Global.FreePages), g.keys["Ta"])
	eq("global.eph_puts", int64(doc.Global.EphPuts), g.keys["Ep"])
	cs := sums(recs)
	if len(cs) != len(doc.Domains) {
		t.Fatalf("%d domains in JSON, %d C= lines", len(doc.Domains), len(cs))
	}
	for i, c := range cs {
		d := doc.Domains[i]
		eq("domain id", int64(d.ID), c.c.keys["CI"])
		eq("weight", d.Weight, c.c.keys["ww"])
		eq("eph_pages", d.EphPages, c.c.keys["Ec"])
		eq("eph_gets", d.EphGets, c.c.keys["Ge"])
		eq("pers_puts", d.PersPuts, c.c.keys["Pp"])
		eq("puts", int64(d.Puts), c.puts)
		eq("gets", int64(d.Gets), c.gets)
		eq("hits", int64(d.Hits), c.hits)
		if math.Abs(d.EphMiB-float64(c.c.keys["Ec"])*4/1024) > 1e-9 {
			t.Errorf("eph_mib %v for %d pages", d.EphMiB, c.c.keys["Ec"])
		}
		if ca, has := c.c.keys["ca"]; has != (d.Cap != nil) || has && *d.Cap != ca {
			t.Errorf("domain %d: cap %v, raw LIST has ca=%v (%d)", d.ID, d.Cap, has, ca)
		}
		if len(d.Pools) != len(c.pools) {
			t.Fatalf("domain %d: %d pools in JSON, %d P= lines", d.ID, len(d.Pools), len(c.pools))
		}
		for j, p := range c.pools {
			pj := d.Pools[j]
			eq("pool id", pj.ID, p.keys["PI"])
			eq("pool pages", pj.Pages, p.keys["Pc"])
			eq("pool max_pages", pj.MaxPages, p.keys["Pm"])
			eq("pool objects", pj.Objects, p.keys["Oc"])
			eq("pool puts", int64(pj.Puts), p.keys["pt"])
			eq("pool good_puts", int64(pj.GoodPuts), p.keys["ps"])
			eq("pool failed_puts", int64(pj.NoMemPuts), p.keys["px"])
			eq("pool gets", int64(pj.Gets), p.keys["gt"])
			eq("pool hits", int64(pj.Hits), p.keys["gs"])
			eq("pool flushes", int64(pj.Flushes), p.keys["ft"])
			if gt := p.keys["gt"]; gt > 0 && (pj.HitRatio == nil || math.Abs(*pj.HitRatio-float64(p.keys["gs"])/float64(gt)) > 1e-12) {
				t.Errorf("pool hit_ratio %v, raw %d/%d", pj.HitRatio, p.keys["gs"], gt)
			}
		}
	}
}

// checkTable reads the domain table's columns by header name.
func checkTable(t *testing.T, recs []rawRecord, out string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	var head []string
	rows := map[string][]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "DOMAIN" && head == nil {
			head = f
			continue
		}
		if head != nil {
			if len(f) == 0 {
				break
			}
			rows[f[1]] = f // by domain id
		}
	}
	col := func(row []string, name string) string {
		for i, h := range head {
			if h == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s in %q", name, head)
		return ""
	}
	for _, c := range sums(recs) {
		id := strconv.FormatInt(c.c.keys["CI"], 10)
		row, ok := rows[id]
		if !ok {
			t.Errorf("domain %s missing from the table", id)
			continue
		}
		want := map[string]int64{"EPH_PAGES": c.c.keys["Ec"], "PUTS": c.puts, "GETS": c.gets, "HITS": c.hits,
			"WEIGHT": c.c.keys["ww"], "POOLS": int64(len(c.pools))}
		for name, w := range want {
			if got := col(row, name); got != strconv.FormatInt(w, 10) {
				t.Errorf("domain %s: %s = %s, raw LIST says %d", id, name, got, w)
			}
		}
		if got, w := col(row, "EPH_MiB"), fmtMiB(float64(c.c.keys["Ec"])*4/1024); got != w {
			t.Errorf("domain %s: EPH_MiB = %s, want %s", id, got, w)
		}
	}
}
