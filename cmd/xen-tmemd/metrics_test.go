package main

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/internal/control"
	"github.com/xentmem/xentmem/pools"
)

// stepClock returns start, start+step, start+2·step … on successive
// calls, so that a tick's duration (two readings) is exactly step.
func stepClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	next := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := next
		next = next.Add(step)
		return t
	}
}

// collectAndCompare gathers c from a private pedantic registry and
// compares the families named (all if none) with expected, in the text
// exposition format. It does what testutil.CollectAndCompare does; that
// package needs github.com/kylelemons/godebug, which go.sum lacks.
func collectAndCompare(c prometheus.Collector, expected string, names ...string) error {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	got, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("gather: %w", err)
	}
	tp := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := tp.TextToMetricFamilies(strings.NewReader(expected))
	if err != nil {
		return fmt.Errorf("parse expected: %w", err)
	}
	var want []*dto.MetricFamily
	for _, mf := range parsed {
		want = append(want, mf)
	}
	g, w := exposition(got, names), exposition(want, names)
	if diff := cmp.Diff(w, g); diff != "" {
		return fmt.Errorf("metrics (-want +got):\n%s", diff)
	}
	return nil
}

// exposition encodes the families named (all if none) as sorted lines of
// text.
func exposition(mfs []*dto.MetricFamily, names []string) []string {
	var keep []*dto.MetricFamily
	for _, mf := range mfs {
		if len(names) == 0 || slices.Contains(names, mf.GetName()) {
			keep = append(keep, mf)
		}
	}
	slices.SortFunc(keep, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range keep {
		if err := enc.Encode(mf); err != nil {
			return []string{"encode: " + err.Error()}
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	slices.Sort(lines) // the text format's own order is irrelevant here
	return lines
}

func TestMetrics(t *testing.T) {
	epoch := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	busy := func(t *testing.T, h *simHarness) {
		h.drive(t, "web1", 5000)
		h.drive(t, "swap1", 3000)
		h.d.tick()
	}
	for _, tc := range []struct {
		name  string
		hc    simHarnessConfig
		setup func(t *testing.T, h *simHarness)
		names []string
		want  string
	}{
		{
			name:  "before the first tick",
			setup: func(*testing.T, *simHarness) {},
			names: []string{"xentmem_collect_success", "xentmem_collect_failures", "xentmem_ticks_total", "xentmem_host_memory_bytes", "xentmem_domains"},
			want: `
# HELP xentmem_collect_success 1 if the last monitoring tick succeeded.
# TYPE xentmem_collect_success gauge
xentmem_collect_success 0
# HELP xentmem_collect_failures Consecutive failed monitoring ticks (0 when healthy).
# TYPE xentmem_collect_failures gauge
xentmem_collect_failures 0
# HELP xentmem_ticks_total Monitoring ticks, successful or not.
# TYPE xentmem_ticks_total counter
xentmem_ticks_total 0
`,
		},
		{
			name:  "after a tick",
			setup: busy,
			names: []string{"xentmem_collect_success", "xentmem_collect_duration_seconds", "xentmem_domains", "xentmem_host_memory_bytes",
				"xentmem_domain_tmem_pages", "xentmem_pool_gets_total", "xentmem_pool_puts_total", "xentmem_host_zone"},
			// 1 GiB host; LIST: web1 P= Pc:867 gs:345 gt:1212 ps:1212;
			// swap1 P= Pc:199 gs:64 gt:64 ps:263 pt:263.
			want: `
# HELP xentmem_collect_success 1 if the last monitoring tick succeeded.
# TYPE xentmem_collect_success gauge
xentmem_collect_success 1
# HELP xentmem_collect_duration_seconds How long the last successful monitoring tick took.
# TYPE xentmem_collect_duration_seconds gauge
xentmem_collect_duration_seconds 0.25
# HELP xentmem_domains Domains in Xen's list.
# TYPE xentmem_domains gauge
xentmem_domains 3
# HELP xentmem_host_memory_bytes Host memory by kind: total, free (physinfo), freeable (tmem), outstanding (claims).
# TYPE xentmem_host_memory_bytes gauge
xentmem_host_memory_bytes{kind="free"} 6.49756672e+08
xentmem_host_memory_bytes{kind="freeable"} 3.145728e+06
xentmem_host_memory_bytes{kind="outstanding"} 0
xentmem_host_memory_bytes{kind="total"} 1.073741824e+09
# HELP xentmem_host_zone 1 for the zone available memory is in (calm, normal, low, critical).
# TYPE xentmem_host_zone gauge
xentmem_host_zone{zone="calm"} 1
xentmem_host_zone{zone="critical"} 0
xentmem_host_zone{zone="low"} 0
xentmem_host_zone{zone="normal"} 0
# HELP xentmem_domain_tmem_pages Pages a domain holds in tmem, by pool kind.
# TYPE xentmem_domain_tmem_pages gauge
xentmem_domain_tmem_pages{domain="swap1",domid="2",kind="ephemeral"} 0
xentmem_domain_tmem_pages{domain="swap1",domid="2",kind="persistent"} 199
xentmem_domain_tmem_pages{domain="web1",domid="1",kind="ephemeral"} 867
xentmem_domain_tmem_pages{domain="web1",domid="1",kind="persistent"} 0
# HELP xentmem_pool_gets_total Gets from a pool by result (hit, miss).
# TYPE xentmem_pool_gets_total counter
xentmem_pool_gets_total{domain="swap1",domid="2",pool="0",result="hit",type="persistent"} 64
xentmem_pool_gets_total{domain="swap1",domid="2",pool="0",result="miss",type="persistent"} 0
xentmem_pool_gets_total{domain="web1",domid="1",pool="0",result="hit",type="ephemeral"} 345
xentmem_pool_gets_total{domain="web1",domid="1",pool="0",result="miss",type="ephemeral"} 867
# HELP xentmem_pool_puts_total Puts into a pool by result (ok, failed, other).
# TYPE xentmem_pool_puts_total counter
xentmem_pool_puts_total{domain="swap1",domid="2",pool="0",result="failed",type="persistent"} 0
xentmem_pool_puts_total{domain="swap1",domid="2",pool="0",result="ok",type="persistent"} 263
xentmem_pool_puts_total{domain="swap1",domid="2",pool="0",result="other",type="persistent"} 0
xentmem_pool_puts_total{domain="web1",domid="1",pool="0",result="failed",type="ephemeral"} 0
xentmem_pool_puts_total{domain="web1",domid="1",pool="0",result="ok",type="ephemeral"} 1212
xentmem_pool_puts_total{domain="web1",domid="1",pool="0",result="other",type="ephemeral"} 0
`,
		},
		{
			name: "frozen and re-weighted through the control API",
			setup: func(t *testing.T, h *simHarness) {
				busy(t, h)
				cl := h.client(t)
				ctlCall(t, cl, control.OpFreeze, &control.DomainArgs{Domain: "web1"}, nil)
				ctlCall(t, cl, control.OpSet, &control.SetArgs{DomainArgs: control.DomainArgs{Domain: "swap1"}, Weight: hptr[uint32](7), Compress: hptr(true)}, nil)
				h.d.tick()
			},
			names: []string{"xentmem_domain_frozen", "xentmem_domain_weight", "xentmem_domain_compress", "xentmem_ticks_total"},
			want: `
# HELP xentmem_domain_frozen 1 if the domain's tmem client is frozen.
# TYPE xentmem_domain_frozen gauge
xentmem_domain_frozen{domain="swap1",domid="2"} 0
xentmem_domain_frozen{domain="web1",domid="1"} 1
# HELP xentmem_domain_weight The domain's tmem weight.
# TYPE xentmem_domain_weight gauge
xentmem_domain_weight{domain="swap1",domid="2"} 7
xentmem_domain_weight{domain="web1",domid="1"} 0
# HELP xentmem_domain_compress 1 if the domain's tmem client compresses.
# TYPE xentmem_domain_compress gauge
xentmem_domain_compress{domain="swap1",domid="2"} 1
xentmem_domain_compress{domain="web1",domid="1"} 0
# HELP xentmem_ticks_total Monitoring ticks, successful or not.
# TYPE xentmem_ticks_total counter
xentmem_ticks_total 2
`,
		},
		{
			name: "a failed tick keeps the last observation",
			hc: simHarnessConfig{wrap: func(c hypercall.Caller) hypercall.Caller {
				return &faultCaller{Caller: c, op: hypercall.OpSysctl}
			}},
			setup: func(t *testing.T, h *simHarness) {
				busy(t, h)
				h.caller.(*faultCaller).arm(-1, hypercall.EFAULT)
				h.d.tick()
				h.d.tick()
			},
			names: []string{"xentmem_collect_success", "xentmem_collect_failures", "xentmem_ticks_total", "xentmem_domains"},
			want: `
# HELP xentmem_collect_success 1 if the last monitoring tick succeeded.
# TYPE xentmem_collect_success gauge
xentmem_collect_success 0
# HELP xentmem_collect_failures Consecutive failed monitoring ticks (0 when healthy).
# TYPE xentmem_collect_failures gauge
xentmem_collect_failures 2
# HELP xentmem_ticks_total Monitoring ticks, successful or not.
# TYPE xentmem_ticks_total counter
xentmem_ticks_total 3
# HELP xentmem_domains Domains in Xen's list.
# TYPE xentmem_domains gauge
xentmem_domains 3
`,
		},
		{
			name: "actions by kind and reason class",
			setup: func(t *testing.T, h *simHarness) {
				busy(t, h)
				h.d.mu.Lock()
				defer h.d.mu.Unlock()
				for _, a := range []pools.Action{
					{Kind: pools.ActionFlush, DomID: pools.AllClients, KiB: 1024, Reason: "reserving memory for big: …"},
					{Kind: pools.ActionFlush, DomID: pools.AllClients, KiB: 1024, Reason: "4.0 MiB available is below the low watermark"},
					{Kind: pools.ActionFreeze, DomID: h.id("web1"), Reason: "below the critical watermark"},
					{Kind: pools.ActionSetWeight, DomID: h.id("web1"), Weight: 5, Reason: "weight from the domain's metadata"},
					{Kind: pools.ActionThaw, DomID: 77, Reason: "no such domain"},
				} {
					a.DryRun = true
					h.d.execute(a)
				}
				h.d.execute(pools.Action{Kind: pools.ActionThaw, DomID: 77, Reason: "no such domain"})
			},
			names: []string{"xentmem_policy_actions_total", "xentmem_policy_action_errors_total"},
			want: `
# HELP xentmem_policy_actions_total Actions taken (or, in dry-run mode, proposed) by kind and reason class.
# TYPE xentmem_policy_actions_total counter
xentmem_policy_actions_total{kind="flush",reason="policy"} 1
xentmem_policy_actions_total{kind="flush",reason="reservation"} 1
xentmem_policy_actions_total{kind="freeze",reason="policy"} 1
xentmem_policy_actions_total{kind="set-weight",reason="metadata"} 1
xentmem_policy_actions_total{kind="thaw",reason="policy"} 2
# HELP xentmem_policy_action_errors_total Actions that failed when executed.
# TYPE xentmem_policy_action_errors_total counter
xentmem_policy_action_errors_total 1
`,
		},
		{
			name:  "xen without tmem",
			hc:    simHarnessConfig{version: "4.13.0", noGuests: true},
			setup: func(t *testing.T, h *simHarness) { h.d.tick() },
			names: []string{"xentmem_collect_success", "xentmem_host_memory_bytes", "xentmem_host_zone", "xentmem_domain_tmem_pages", "xentmem_domains"},
			want: `
# HELP xentmem_collect_success 1 if the last monitoring tick succeeded.
# TYPE xentmem_collect_success gauge
xentmem_collect_success 1
# HELP xentmem_domains Domains in Xen's list.
# TYPE xentmem_domains gauge
xentmem_domains 1
# HELP xentmem_host_memory_bytes Host memory by kind: total, free (physinfo), freeable (tmem), outstanding (claims).
# TYPE xentmem_host_memory_bytes gauge
xentmem_host_memory_bytes{kind="free"} 7.88529152e+08
xentmem_host_memory_bytes{kind="freeable"} 0
xentmem_host_memory_bytes{kind="outstanding"} 0
xentmem_host_memory_bytes{kind="total"} 1.073741824e+09
`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := tc.hc
			hc.now = stepClock(epoch, 250*time.Millisecond)
			hc.simClock = func() time.Time { return epoch }
			h := newSimHarness(t, hc)
			tc.setup(t, h)
			if err := collectAndCompare(tmemCollector{d: h.d}, tc.want, tc.names...); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestMetricsLint: the collector's output passes the registry's pedantic
// checks (consistent help, label names, no duplicates) with every metric
// present.
func TestMetricsLint(t *testing.T) {
	h := busyHarness(t, simHarnessConfig{})
	h.d.mu.Lock()
	h.d.execute(pools.Action{Kind: pools.ActionFlush, DomID: pools.AllClients, KiB: 4, Reason: "test", DryRun: true})
	h.d.mu.Unlock()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(tmemCollector{d: h.d})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		got = append(got, mf.GetName())
	}
	if diff := cmp.Diff(metricNames(t), got); diff != "" {
		t.Errorf("gathered families (-described +gathered):\n%s", diff)
	}
}

// metricNames returns, sorted, the name of every metric the collector
// describes.
func metricNames(t *testing.T) []string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 64)
	tmemCollector{}.Describe(ch)
	close(ch)
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		m := re.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names = append(names, m[1])
	}
	slices.Sort(names)
	return names
}
