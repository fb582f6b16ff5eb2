package xensim

import (
	"strings"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
)

// auth issues TMEM_AUTH (cmd 101) from dom0, as xl tmem-shared-auth does
// up to 4.8.
func (r *raw) auth(cli uint32, lo, hi uint64, on bool) int64 {
	return r.op(func(b []byte) {
		le32(b, 0, hypercall.TMEM_AUTH)
		le64(b, 8, lo)
		le64(b, 16, hi)
		if on {
			le32(b, 24, 1)
		}
		le32(b, 28, cli)
	})
}

func listedType(t *testing.T, r *raw, cli uint32, pool int) string {
	t.Helper()
	text, res := r.list(cli, false, 4096)
	if res != 0 {
		t.Fatalf("LIST %d: %d", cli, res)
	}
	lines := strings.Split(text, "\n")
	if pool+1 >= len(lines) {
		t.Fatalf("no pool %d in %q", pool, text)
	}
	i := strings.Index(lines[pool+1], "PT:")
	return lines[pool+1][i+3 : i+5]
}

// TestSharedAuth: shared pools need authorisation on 4.9+ always, on
// 4.0–4.8 only with tmem_shared_auth; without it the pool is silently
// private.
func TestSharedAuth(t *testing.T) {
	for _, c := range []struct {
		version string
		bootOpt bool
		shared  bool
	}{
		{"4.5.5", false, true},
		{"4.8.5", false, true},
		{"4.8.5", true, false},
		{"4.12.4", false, false},
	} {
		s, _ := New(&Config{Version: c.version, TmemSharedAuth: c.bootOpt})
		g := guests(t, s, 1)[0]
		d := newRaw(t, s, c.version)
		g.newPool(ephShr, 5, 6)
		want := map[bool]string{true: "ES", false: "EP"}[c.shared]
		if got := listedType(t, d, 1, 0); got != want {
			t.Errorf("%s (tmem_shared_auth=%v): unauthorised shared pool is %s, want %s", c.version, c.bootOpt, got, want)
		}
	}

	// 4.8 with the boot option: per-client TMEM_AUTH, then global auth.
	s, _ := New(&Config{Version: "4.8.5", TmemSharedAuth: true})
	g := guests(t, s, 2)
	d := newRaw(t, s, "4.8.5")
	if res := d.auth(1, 5, 6, true); res != neg(hypercall.EINVAL) {
		t.Errorf("TMEM_AUTH before the guest used tmem: %d", res)
	}
	g[0].newPool(eph, 0, 0)
	if res := d.auth(1, 5, 6, true); res != 1 {
		t.Fatalf("TMEM_AUTH: %d", res)
	}
	if p := g[0].newPool(ephShr, 5, 6); p != 1 || listedType(t, d, 1, 1) != "ES" {
		t.Errorf("authorised pool %d is %s", p, listedType(t, d, 1, 1))
	}
	if res := d.auth(allClients, 0, 0, true); res != 1 {
		t.Fatalf("global auth: %d", res)
	}
	if p := g[1].newPool(ephShr, 7, 8); p != 0 || listedType(t, d, 2, 0) != "ES" {
		t.Errorf("pool under global auth is %s", listedType(t, d, 2, 0))
	}
	if res := d.auth(1, 5, 6, false); res != 1 {
		t.Errorf("revoke: %d", res)
	}
	if res := d.auth(1, 5, 6, false); res != 0 {
		t.Errorf("second revoke: %d", res)
	}
}

// TestSharedOwnerDies: when the owner of a shared pool dies, the next
// sharer becomes the owner (with its own slot as the pool id), the pages
// the owner wrote are dropped, and the pool stays marked dying, so its
// pages are never evicted again (Xen's pool_destroy_objs sets is_dying for
// good).
func TestSharedOwnerDies(t *testing.T) {
	s, _ := New(&Config{Version: "4.5.5"})
	g := guests(t, s, 2)
	d := newRaw(t, s, "4.5.5")
	g[1].newPool(eph, 0, 0)
	if p := g[0].newPool(ephShr, 1, 2); p != 0 {
		t.Fatal(p)
	}
	if p := g[1].newPool(ephShr, 1, 2); p != 1 {
		t.Fatal(p)
	}
	// Domain 2 puts a page (charged to the owner's last_client) and reads
	// another back, which makes it that object's last client.
	g[1].put(1, [3]uint64{10}, 0, 1)
	g[0].put(0, [3]uint64{11}, 0, 1)
	if g[1].get(1, [3]uint64{11}, 0, 2) != 1 {
		t.Fatal("shared get")
	}
	text, _ := d.list(2, false, 4096)
	if !strings.Contains(text, "P=CI:2,PI:0,PT:ES,U0:1,U1:2") {
		t.Errorf("joined pool should show the owner's slot:\n%s", text)
	}
	if err := s.DestroyDomain(1); err != nil {
		t.Fatal(err)
	}
	text, _ = d.list(allClients, true, 1<<16)
	if !strings.Contains(text, "S=SI:0,PT:ES,U0:1,U1:2,SC:2,Pc:1,") || !strings.Contains(text, "P=CI:2,PI:1,PT:ES,U0:1,U1:2,Pc:1,") {
		t.Errorf("after the owner died:\n%s", text)
	}
	if g[1].get(1, [3]uint64{10}, 0, 2) != 0 || g[1].get(1, [3]uint64{11}, 0, 2) != 1 {
		t.Error("the owner's objects should be gone, the one domain 2 read last kept")
	}
	// The pool is dying: a flush of everything cannot evict its page.
	d.flush(allClients, 1<<20)
	if g[1].get(1, [3]uint64{11}, 0, 2) != 1 {
		t.Error("a page of a dying shared pool was evicted")
	}
	if err := s.DestroyDomain(2); err != nil {
		t.Fatal(err)
	}
	text, _ = d.list(allClients, false, 4096)
	if strings.Contains(text, "S=") || strings.Contains(text, "C=") {
		t.Errorf("pool or clients left:\n%s", text)
	}
}
