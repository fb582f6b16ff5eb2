package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// tmemCollector exports the last observation and the policy's assessment
// as Prometheus metrics. It reads the daemon's state; it issues no
// hypercall, so a scrape never blocks on Xen.
type tmemCollector struct{ d *daemon }

var (
	descUp          = prometheus.NewDesc("xentmem_collect_success", "1 if the last monitoring tick succeeded.", nil, nil)
	descCollectSecs = prometheus.NewDesc("xentmem_collect_duration_seconds", "How long the last successful monitoring tick took.", nil, nil)
	descTicks       = prometheus.NewDesc("xentmem_ticks_total", "Monitoring ticks, successful or not.", nil, nil)
	descErrStreak   = prometheus.NewDesc("xentmem_collect_failures", "Consecutive failed monitoring ticks (0 when healthy).", nil, nil)
	descActions     = prometheus.NewDesc("xentmem_policy_actions_total", "Actions taken (or, in dry-run mode, proposed) by kind and reason class.", []string{"kind", "reason"}, nil)
	descActErrors   = prometheus.NewDesc("xentmem_policy_action_errors_total", "Actions that failed when executed.", nil, nil)
	descHost        = prometheus.NewDesc("xentmem_host_memory_bytes", "Host memory by kind: total, free (physinfo), freeable (tmem), outstanding (claims).", []string{"kind"}, nil)
	descScore       = prometheus.NewDesc("xentmem_host_pressure", "Host pressure score, 0 calm … 1.", nil, nil)
	descZone        = prometheus.NewDesc("xentmem_host_zone", "1 for the zone available memory is in (calm, normal, low, critical).", []string{"zone"}, nil)
	descWatermark   = prometheus.NewDesc("xentmem_watermark_bytes", "The watermarks in force.", []string{"level"}, nil)
	descDomPages    = prometheus.NewDesc("xentmem_domain_tmem_pages", "Pages a domain holds in tmem, by pool kind.", []string{"domain", "domid", "kind"}, nil)
	descDomWeight   = prometheus.NewDesc("xentmem_domain_weight", "The domain's tmem weight.", []string{"domain", "domid"}, nil)
	descDomFrozen   = prometheus.NewDesc("xentmem_domain_frozen", "1 if the domain's tmem client is frozen.", []string{"domain", "domid"}, nil)
	descDomCompress = prometheus.NewDesc("xentmem_domain_compress", "1 if the domain's tmem client compresses.", []string{"domain", "domid"}, nil)
	descDomPressure = prometheus.NewDesc("xentmem_domain_pressure", "Ephemeral pressure score of the domain's pools, 0 … 1.", []string{"domain", "domid"}, nil)
	descPoolPages   = prometheus.NewDesc("xentmem_pool_pages", "Pages in a tmem pool.", []string{"domain", "domid", "pool", "type"}, nil)
	descPoolPuts    = prometheus.NewDesc("xentmem_pool_puts_total", "Puts into a pool by result (ok, failed, other).", []string{"domain", "domid", "pool", "type", "result"}, nil)
	descPoolGets    = prometheus.NewDesc("xentmem_pool_gets_total", "Gets from a pool by result (hit, miss).", []string{"domain", "domid", "pool", "type", "result"}, nil)
	descPoolFlushes = prometheus.NewDesc("xentmem_pool_flushes_total", "Page flushes of a pool.", []string{"domain", "domid", "pool", "type"}, nil)
	descEvictions   = prometheus.NewDesc("xentmem_evictions_total", "Ephemeral pages evicted by Xen (LIST Et).", nil, nil)
	descDomains     = prometheus.NewDesc("xentmem_domains", "Domains in Xen's list.", nil, nil)
)

func (c tmemCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descCollectSecs, descTicks, descErrStreak, descActions, descActErrors,
		descHost, descScore, descZone, descWatermark, descDomPages, descDomWeight, descDomFrozen, descDomCompress,
		descDomPressure, descPoolPages, descPoolPuts, descPoolGets, descPoolFlushes, descEvictions, descDomains} {
		ch <- d
	}
}

func (c tmemCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	gauge := func(desc *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, l...)
	}
	counter := func(desc *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, l...)
	}
	up := 0.0
	if d.lastErr == nil && d.last != nil {
		up = 1
	}
	gauge(descUp, up)
	gauge(descErrStreak, float64(d.errStreak))
	counter(descTicks, float64(d.ticks))
	counter(descActErrors, float64(d.actErrors))
	for key, n := range d.actionCounts() {
		counter(descActions, float64(n), key[0], key[1])
	}
	o := d.last
	if o == nil {
		return
	}
	gauge(descCollectSecs, o.Took.Seconds())
	gauge(descDomains, float64(len(o.Domains)))
	h := o.Snapshot.Host
	for _, kv := range []struct {
		k string
		v uint64
	}{{"total", h.TotalKiB}, {"free", h.FreeKiB}, {"freeable", h.FreeableKiB}, {"outstanding", h.OutstandingKiB}} {
		gauge(descHost, float64(kv.v)*1024, kv.k)
	}
	if o.List == nil {
		return
	}
	counter(descEvictions, float64(o.Snapshot.Global.Evictions))
	a := d.policy.Assessment()
	gauge(descScore, a.Pressure.Score)
	for _, z := range []string{"calm", "normal", "low", "critical"} {
		v := 0.0
		if a.Pressure.Zone.String() == z {
			v = 1
		}
		gauge(descZone, v, z)
	}
	lim := a.Pressure.Limits
	gauge(descWatermark, float64(lim.CriticalKiB)*1024, "critical")
	gauge(descWatermark, float64(lim.LowKiB)*1024, "low")
	gauge(descWatermark, float64(lim.HighKiB)*1024, "high")
	scores := map[uint16]float64{}
	for _, cp := range a.Pressure.Clients {
		scores[cp.DomID] = cp.Score
	}
	for _, cl := range o.Snapshot.Clients {
		name, id := cl.Name, strconv.Itoa(int(cl.DomID))
		var eph, pers uint64
		for _, p := range cl.Pools {
			typ := poolType(p.Persistent, p.Shared)
			if p.Persistent {
				pers += p.Pages
			} else {
				eph += p.Pages
			}
			pid := strconv.Itoa(p.ID)
			gauge(descPoolPages, float64(p.Pages), name, id, pid, typ)
			counter(descPoolPuts, float64(p.PutsOK), name, id, pid, typ, "ok")
			counter(descPoolPuts, float64(p.PutsFailed), name, id, pid, typ, "failed")
			counter(descPoolPuts, float64(subSat(p.Puts, p.PutsOK+p.PutsFailed)), name, id, pid, typ, "other")
			counter(descPoolGets, float64(p.GetsOK), name, id, pid, typ, "hit")
			counter(descPoolGets, float64(subSat(p.Gets, p.GetsOK)), name, id, pid, typ, "miss")
			counter(descPoolFlushes, float64(p.Flushes), name, id, pid, typ)
		}
		gauge(descDomPages, float64(eph), name, id, "ephemeral")
		gauge(descDomPages, float64(pers), name, id, "persistent")
		gauge(descDomWeight, float64(cl.Weight), name, id)
		gauge(descDomFrozen, b2f(cl.Frozen), name, id)
		gauge(descDomCompress, b2f(cl.Compress), name, id)
		gauge(descDomPressure, scores[cl.DomID], name, id)
	}
}

func poolType(persistent, shared bool) string {
	t := "ephemeral"
	if persistent {
		t = "persistent"
	}
	if shared {
		return t + "-shared"
	}
	return t
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func subSat(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// reasonClass groups an action's free-text reason for the metrics label.
func reasonClass(reason string) string {
	switch {
	case strings.HasPrefix(reason, "reserv"), strings.HasPrefix(reason, "was frozen before the reservation"):
		return "reservation"
	case strings.Contains(reason, "metadata"):
		return "metadata"
	}
	return "policy"
}

// serveMetrics serves /metrics from a private registry on addr. Only
// loopback addresses are accepted unless the address is explicit about it.
func serveMetrics(ctx context.Context, addr string, d *daemon, log *zap.Logger) (func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: metrics.listen %q: %v", errConfig, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Warn("metrics listen on a non-loopback address", zap.String("addr", addr))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(tmemCollector{d: d})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(log)}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", zap.Error(err))
		}
	}()
	log.Info("metrics", zap.String("addr", ln.Addr().String()))
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}
