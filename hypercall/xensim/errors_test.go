package xensim

import (
	"testing"

	"github.com/xentmem/xentmem/hypercall"
)

// Every error path of every operation, through the simulator's hypercall
// interface, on the generations where it differs.

const (
	eph     = 0x01000000
	pers    = 0x01000001
	ephShr  = 0x01000002
	persShr = 0x01000003
	ephA0   = 0x00000000 // spec version 0 on 4.0.0/4.0.1
)

func neg(e hypercall.Errno) int64 { return -int64(e) }

type errCase struct {
	name     string
	versions []string
	cfg      func(*Config)
	run      func(t *testing.T, s *Sim, r *raw) int64
	want     int64
}

// ephFlags returns the ephemeral private flags for the release.
func ephFlags(r *raw) uint32 {
	if r.gen == genA0 {
		return ephA0
	}
	return eph
}

// persFlags returns the persistent private flags for the release.
func persFlags(r *raw) uint32 {
	if r.gen == genA0 {
		return 0x1
	}
	return pers
}

func withPool(flags func(*raw) uint32, f func(t *testing.T, s *Sim, r *raw, pool int32) int64) func(*testing.T, *Sim, *raw) int64 {
	return func(t *testing.T, s *Sim, r *raw) int64 {
		p := r.newPool(flags(r), 0, 0)
		if p < 0 {
			t.Fatalf("new pool: %d", p)
		}
		return f(t, s, r, int32(p))
	}
}

func flagsOf(f uint32) func(*raw) uint32 { return func(*raw) uint32 { return f } }

var (
	genAll  = []string{"4.0.0", "4.0.2", "4.3.4", "4.5.5", "4.6.6", "4.7.6", "4.8.5", "4.9.4", "4.12.4"}
	genNew  = []string{"4.6.6", "4.8.5", "4.12.4"}
	genCD   = []string{"4.8.5", "4.12.4"}
	genOld  = []string{"4.0.0", "4.0.2", "4.3.4"}
	genPost = []string{"4.4.4", "4.5.5", "4.12.4"}
)

func TestErrorPaths(t *testing.T) {
	cases := []errCase{
		// tmem not there.
		{"tmem off: ENODEV", genAll, func(c *Config) { c.Tmem = TmemDisabled },
			func(t *testing.T, s *Sim, r *raw) int64 { return r.newPool(ephFlags(r), 0, 0) }, neg(hypercall.ENODEV)},
		{"tmem not built: ENOSYS", []string{"4.7.6", "4.12.4"}, func(c *Config) { c.Tmem = TmemNotBuilt },
			func(t *testing.T, s *Sim, r *raw) int64 { return r.newPool(eph, 0, 0) }, neg(hypercall.ENOSYS)},
		{"4.13+ tmem_op: ENOSYS", []string{"4.13.0", "4.17.7", "4.19.0"}, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.newPool(eph, 0, 0) }, neg(hypercall.ENOSYS)},
		{"4.13+ sysctl 24: ENOSYS", []string{"4.13.0", "4.17.7", "4.19.0"}, nil,
			func(t *testing.T, s *Sim, r *raw) int64 {
				return r.sysctl(hypercall.XEN_SYSCTL_tmem_op, r.iface, nil)
			}, neg(hypercall.ENOSYS)},
		{"sysctl 24 before 4.6: ENOSYS", []string{"4.0.2", "4.5.5"}, nil,
			func(t *testing.T, s *Sim, r *raw) int64 {
				return r.sysctl(hypercall.XEN_SYSCTL_tmem_op, r.iface, nil)
			}, neg(hypercall.ENOSYS)},

		// Unknown pools.
		{"PUT uncreated pool: ENODEV", genAll, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.put(15, [3]uint64{1}, 0, 1) }, neg(hypercall.ENODEV)},
		{"GET pool -1: ENODEV", genAll, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.get(-1, [3]uint64{1}, 0, 1) }, neg(hypercall.ENODEV)},
		{"FLUSH pool 16: ENODEV", genAll, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.flushPage(16, [3]uint64{1}, 0) }, neg(hypercall.ENODEV)},
		{"DESTROY_POOL uncreated: 0", genAll, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.destroyPool(3) }, 0},
		{"DESTROY_POOL out of range: 0", genAll, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.destroyPool(99) }, 0},

		// Pool flags.
		{"spec version 1 on A0: EPERM", []string{"4.0.0", "4.0.1"}, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.newPool(eph, 0, 0) }, neg(hypercall.EPERM)},
		{"spec version 0 after A0: EPERM", []string{"4.0.2", "4.5.5", "4.12.4"}, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.newPool(0, 0, 0) }, neg(hypercall.EPERM)},
		{"spec version 2: EPERM", genAll, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.newPool(0x02000000, 0, 0) }, neg(hypercall.EPERM)},
		{"page size 8K: EPERM", genAll, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.newPool(ephFlags(r)|0x10, 0, 0) }, neg(hypercall.EPERM)},
		{"reserved bits: EPERM", []string{"4.0.2", "4.5.5", "4.12.4"}, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.newPool(eph|0x100, 0, 0) }, neg(hypercall.EPERM)},
		{"reserved bits on A0: accepted", []string{"4.0.0"}, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.newPool(0x100, 0, 0) }, 0},
		{"precompressed: EPERM", []string{"4.0.2", "4.12.4"}, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.newPool(eph|0x4, 0, 0) }, neg(hypercall.EPERM)},
		{"shared+persistent from 4.5: EPERM", []string{"4.5.5", "4.12.4"}, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.newPool(persShr, 1, 2) }, neg(hypercall.EPERM)},
		{"shared+persistent up to 4.4: accepted", []string{"4.1.6", "4.4.4"}, nil,
			func(t *testing.T, s *Sim, r *raw) int64 { return r.newPool(persShr, 1, 2) }, 0},
		{"17th pool: EPERM", genAll, nil,
			func(t *testing.T, s *Sim, r *raw) int64 {
				for i := 0; i < 16; i++ {
					if p := r.newPool(ephFlags(r), 0, 0); p != int64(i) {
						t.Fatalf("pool %d: %d", i, p)
					}
				}
				return r.newPool(ephFlags(r), 0, 0)
			}, neg(hypercall.EPERM)},

		// Page operations.
		{"GET empty pool: EEMPTY", genAll, nil, withPool(ephFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			return r.get(p, [3]uint64{1}, 0, 1)
		}), neg(hypercall.EEMPTY)},
		{"GET miss: 0", genAll, nil, withPool(ephFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			r.put(p, [3]uint64{1}, 0, 1)
			return r.get(p, [3]uint64{2}, 0, 1)
		}), 0},
		{"PUT frame not ours: EFAULT", genAll, nil, withPool(ephFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			return r.put(p, [3]uint64{1}, 0, 1<<40)
		}), neg(hypercall.EFAULT)},
		{"GET into frame not ours: EFAULT", genAll, nil, withPool(persFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			r.put(p, [3]uint64{1}, 0, 1)
			return r.get(p, [3]uint64{1}, 0, 1<<40)
		}), neg(hypercall.EFAULT)},
		{"tmem_op outside any buffer: EFAULT", genAll, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return rc(s.Hypercall(hypercall.OpTmem, hypercall.Args{0x1000}))
		}, neg(hypercall.EFAULT)},
		{"tmem_op straddling a buffer end: EFAULT", genAll, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return rc(s.Hypercall(hypercall.OpTmem, hypercall.Args{r.buf.AddrAt(4096 - 8)}))
		}, neg(hypercall.EFAULT)},
		{"unknown cmd from 4.4: ENOSYS", genPost, nil, withPool(flagsOf(eph), func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			return r.pageOp(99, p, [3]uint64{}, 0, 0)
		}), neg(hypercall.ENOSYS)},
		{"unknown cmd up to 4.3: 0", genOld, nil, withPool(ephFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			return r.pageOp(99, p, [3]uint64{}, 0, 0)
		}), 0},
		{"NEW_PAGE from 4.4: ENOSYS", genPost, nil, withPool(flagsOf(eph), func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			return r.pageOp(hypercall.TMEM_NEW_PAGE, p, [3]uint64{1}, 0, 1)
		}), neg(hypercall.ENOSYS)},
		{"NEW_PAGE up to 4.3: 1", genOld, nil, withPool(ephFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			return r.pageOp(hypercall.TMEM_NEW_PAGE, p, [3]uint64{1}, 0, 1)
		}), 1},
		{"XCHG up to 4.3: 0", genOld, nil, withPool(ephFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			return r.pageOp(hypercall.TMEM_XCHG, p, [3]uint64{1}, 0, 1)
		}), 0},

		// Frozen clients.
		{"PUT while frozen: EFROZEN", genAll, nil, withPool(ephFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			r.tmemCtl(hypercall.TMEMC_FREEZE, 0, 0, 0, 0)
			return r.put(p, [3]uint64{1}, 0, 1)
		}), neg(hypercall.EFROZEN)},
		{"overwrite while frozen: 1", genAll, nil, withPool(persFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			r.put(p, [3]uint64{1}, 0, 1)
			r.tmemCtl(hypercall.TMEMC_FREEZE, allClients, 0, 0, 0)
			return r.put(p, [3]uint64{1}, 0, 2)
		}), 1},
		{"FLUSH_PAGE while frozen: EFROZEN", genAll, nil, withPool(ephFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			r.tmemCtl(hypercall.TMEMC_FREEZE, 0, 0, 0, 0)
			return r.flushPage(p, [3]uint64{1}, 0)
		}), neg(hypercall.EFROZEN)},
		{"FLUSH_OBJECT while frozen: EFROZEN", genAll, nil, withPool(ephFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			r.tmemCtl(hypercall.TMEMC_FREEZE, 0, 0, 0, 0)
			return r.flushObject(p, [3]uint64{1})
		}), neg(hypercall.EFROZEN)},
		{"GET while frozen: 1", genAll, nil, withPool(ephFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			r.put(p, [3]uint64{1}, 0, 1)
			r.tmemCtl(hypercall.TMEMC_FREEZE, 0, 0, 0, 0)
			return r.get(p, [3]uint64{1}, 0, 2)
		}), 1},
		{"DESTROY thaws", genAll, nil, withPool(ephFlags, func(t *testing.T, s *Sim, r *raw, p int32) int64 {
			r.tmemCtl(hypercall.TMEMC_FREEZE, 0, 0, 0, 0)
			r.tmemCtl(hypercall.TMEMC_DESTROY, 0, 0, 0, 0)
			return r.put(p, [3]uint64{1}, 0, 1)
		}), 1},

		// Memory.
		{"persistent PUT at max_pages: ENOMEM", genAll, func(c *Config) { c.Dom0MaxMemoryKiB = 0 },
			func(t *testing.T, s *Sim, r *raw) int64 {
				p := r.newPool(persFlags(r), 0, 0)
				return r.put(int32(p), [3]uint64{1}, 0, 1)
			}, neg(hypercall.ENOMEM)},
	}
	cases = append(cases, controlErrorCases()...)
	for _, c := range cases {
		for _, v := range c.versions {
			t.Run(c.name+"/"+v, func(t *testing.T) {
				cfg := &Config{Version: v, Dom0MaxMemoryKiB: 1 << 20}
				if c.cfg != nil {
					c.cfg(cfg)
				}
				s, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				r := newRaw(t, s, v)
				if got := c.run(t, s, r); got != c.want {
					t.Errorf("got %d, want %d", got, c.want)
				}
			})
		}
	}
}
