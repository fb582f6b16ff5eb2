package xensim

import (
	"testing"

	"github.com/xentmem/xentmem/hypercall"
)

// guestRaw creates domain 1 and returns a raw caller issuing hypercalls
// from it.
func guestRaw(t *testing.T, s *Sim, r *raw) *raw {
	t.Helper()
	id, err := s.CreateDomain(DomainConfig{MemoryKiB: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	g := newRaw(t, s.Guest(id), s.Version())
	return g
}

// poolRecs fills n 32-byte pool records {flags, id, n_pages, uuid lo,
// uuid hi} at the record area.
func (r *raw) poolRecs(recs ...[5]uint64) uint64 {
	b := r.rec()
	clear(b)
	for i, x := range recs {
		le32(b, i*32, uint32(x[0]))
		le32(b, i*32+4, uint32(x[1]))
		le64(b, i*32+8, x[2])
		le64(b, i*32+16, x[3])
		le64(b, i*32+24, x[4])
	}
	return r.buf.AddrAt(rawRec)
}

func controlErrorCases() []errCase {
	all := append(append([]string{}, genAll...), "4.17.7")
	ctl := func(sub, cli, a1, a2 uint32) func(*testing.T, *Sim, *raw) int64 {
		return func(t *testing.T, s *Sim, r *raw) int64 { return r.tmemCtl(sub, cli, a1, a2, 0) }
	}
	withClient := func(f func(t *testing.T, s *Sim, r *raw) int64) func(*testing.T, *Sim, *raw) int64 {
		return func(t *testing.T, s *Sim, r *raw) int64 {
			if p := r.newPool(ephFlags(r), 0, 0); p != 0 {
				t.Fatalf("new pool: %d", p)
			}
			return f(t, s, r)
		}
	}
	bad := uint64(0x1000)
	return []errCase{
		// sysctl and xen_version.
		{"sysctl wrong interface version: EACCES before the command", all, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.sysctl(9999, r.iface+1, nil)
		}, neg(hypercall.EACCES)},
		{"sysctl unknown command: ENOSYS", all, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.sysctl(9999, r.iface, nil)
		}, neg(hypercall.ENOSYS)},
		{"sysctl outside any buffer: EFAULT", all, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return rc(s.Hypercall(hypercall.OpSysctl, hypercall.Args{bad}))
		}, neg(hypercall.EFAULT)},
		{"sysctl from a guest: EPERM", all, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return guestRaw(t, s, r).sysctl(hypercall.XEN_SYSCTL_physinfo, r.iface, nil)
		}, neg(hypercall.EPERM)},
		{"xen_version unknown: ENOSYS", all, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return rc(s.Hypercall(hypercall.OpXenVersion, hypercall.Args{99}))
		}, neg(hypercall.ENOSYS)},
		{"xen_version buffer too small: EFAULT", all, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return rc(s.Hypercall(hypercall.OpXenVersion, hypercall.Args{hypercall.XENVER_capabilities, r.buf.AddrAt(4096 - 100)}))
		}, neg(hypercall.EFAULT)},
		{"unknown hypercall: ENOSYS", all, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return rc(s.Hypercall(hypercall.OpDomctl, hypercall.Args{}))
		}, neg(hypercall.ENOSYS)},
		{"sysctl tmem pad: EINVAL", genNew, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.sysctl(hypercall.XEN_SYSCTL_tmem_op, r.iface, func(u []byte) { le32(u, 0, 8); le32(u, 20, 1) })
		}, neg(hypercall.EINVAL)},

		// The control entry points per generation.
		{"unknown control sub-op: -1", genAll, nil, ctl(77, 0, 0, 0), neg(hypercall.EPERM)},
		{"sub-op 9 before SET_POOLS: -1", []string{"4.5.5", "4.7.6", "4.8.5"}, nil, ctl(9, 0, 0, 0), neg(hypercall.EPERM)},
		{"sub-op 11 on 4.8 (neither SAVE_GET_VERSION nor SET_AUTH): -1", []string{"4.8.5"}, nil, ctl(11, 0, 0, 0), neg(hypercall.EPERM)},
		{"SAVE_GET_VERSION on A0: 0", []string{"4.0.0"}, nil, ctl(hypercall.TMEMC_SAVE_GET_VERSION, 0, 0, 0), 0},
		{"SAVE_GET_VERSION: 1", []string{"4.0.2", "4.6.6"}, nil, ctl(hypercall.TMEMC_SAVE_GET_VERSION, 0, 0, 0), 1},
		{"TMEM_CONTROL from 4.6: EOPNOTSUPP", []string{"4.6.6", "4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.op(func(b []byte) { le32(b, 8, hypercall.TMEMC_QUERY_FREEABLE_MB) })
		}, neg(hypercall.EOPNOTSUPP)},
		{"TMEM_CONTROL from a guest (4.1.4+): EPERM", []string{"4.1.4", "4.2.1", "4.5.5"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return guestRaw(t, s, r).tmemCtl(hypercall.TMEMC_QUERY_FREEABLE_MB, 0, 0, 0, 0)
		}, neg(hypercall.EPERM)},
		{"TMEM_CONTROL from a guest before XSA-15: allowed", []string{"4.0.4", "4.1.3", "4.2.0"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return guestRaw(t, s, r).tmemCtl(hypercall.TMEMC_QUERY_FREEABLE_MB, 0, 0, 0, 0)
		}, 0},
		{"TMEM_AUTH from 4.9: EOPNOTSUPP", []string{"4.9.4", "4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.op(func(b []byte) { le32(b, 0, hypercall.TMEM_AUTH) })
		}, neg(hypercall.EOPNOTSUPP)},
		{"TMEM_AUTH for a non-client: EINVAL", []string{"4.1.6", "4.8.5"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.op(func(b []byte) { le32(b, 0, hypercall.TMEM_AUTH); le32(b, 24, 1); le32(b, 28, 5) })
		}, neg(hypercall.EINVAL)},
		{"TMEM_AUTH: 1", []string{"4.1.6", "4.8.5"}, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			return r.op(func(b []byte) { le32(b, 0, hypercall.TMEM_AUTH); le32(b, 24, 1) })
		}), 1},
		{"TMEM_RESTORE_NEW from 4.9: EOPNOTSUPP", []string{"4.9.4", "4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.op(func(b []byte) { le32(b, 0, hypercall.TMEM_RESTORE_NEW) })
		}, neg(hypercall.EOPNOTSUPP)},
		{"TMEM_RESTORE_NEW into slot 3", []string{"4.5.5", "4.8.5"}, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			return r.op(func(b []byte) {
				le32(b, 0, hypercall.TMEM_RESTORE_NEW)
				le32(b, 4, 3)
				le32(b, 24, eph)
			})
		}), 3},
		{"TMEM_RESTORE_NEW for a non-client: EPERM", []string{"4.5.5", "4.8.5"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.op(func(b []byte) { le32(b, 0, hypercall.TMEM_RESTORE_NEW); le32(b, 24, eph); le32(b, 28, 1) })
		}, neg(hypercall.EPERM)},

		// Common sub-ops.
		{"LIST of a non-client: -1", genAll, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			_, res := r.list(0, false, 4096)
			return res
		}, neg(hypercall.EPERM)},
		{"LIST into a buffer too small: 0, records dropped", genPost, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			b, _ := s.Alloc(100)
			defer b.Close()
			return r.tmemCtl(hypercall.TMEMC_LIST, allClients, 16384, 1, b.AddrAt(4096-40))
		}), 0},
		{"FREEZE of a non-client: -1", genAll, nil, ctl(hypercall.TMEMC_FREEZE, 3, 0, 0), neg(hypercall.EPERM)},
		{"THAW of a non-client: -1", genAll, nil, ctl(hypercall.TMEMC_THAW, 3, 0, 0), neg(hypercall.EPERM)},
		{"DESTROY of a non-client: -1", genAll, nil, ctl(hypercall.TMEMC_DESTROY, 3, 0, 0), neg(hypercall.EPERM)},
		{"FLUSH of one domain: -1", genAll, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			return r.flush(0, 1024)
		}), neg(hypercall.EPERM)},
		{"FLUSH all, nothing held: 0", genAll, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.flush(0x1FFFF, 1024) // cli narrowed to 0xFFFF
		}, 0},

		// Generation A/B variables and save sub-ops.
		{"SET_WEIGHT of a non-client: -1", []string{"4.0.2", "4.6.6"}, nil, ctl(hypercall.TMEMC_SET_WEIGHT, 3, 5, 0), neg(hypercall.EPERM)},
		{"SET_WEIGHT all, no client, up to 4.4: 0", []string{"4.1.6", "4.4.4"}, nil, ctl(hypercall.TMEMC_SET_WEIGHT, allClients, 5, 0), 0},
		{"SET_WEIGHT all, no client, 4.5+: -1", []string{"4.5.5", "4.7.6"}, nil, ctl(hypercall.TMEMC_SET_WEIGHT, allClients, 5, 0), neg(hypercall.EPERM)},
		{"SAVE_GET_CLIENT_WEIGHT of a non-client: -1", []string{"4.3.4", "4.6.6"}, nil, ctl(hypercall.TMEMC_SAVE_GET_CLIENT_WEIGHT, 3, 0, 0), neg(hypercall.EPERM)},
		{"SAVE_GET_POOL_FLAGS of no pool: -1", []string{"4.3.4", "4.6.6"}, nil, ctl(hypercall.TMEMC_SAVE_GET_POOL_FLAGS, 0, 0, 0), neg(hypercall.EPERM)},
		{"SAVE_BEGIN without a client (A/B): 0", []string{"4.3.4", "4.6.6"}, nil, ctl(hypercall.TMEMC_SAVE_BEGIN, 3, 0, 0), 0},
		{"SAVE_BEGIN (A/B): 1", []string{"4.3.4", "4.6.6"}, nil, withClient(ctl(hypercall.TMEMC_SAVE_BEGIN, 0, 0, 0)), 1},
		{"RESTORE_BEGIN on a client (A/B): -1", []string{"4.3.4", "4.6.6"}, nil, withClient(ctl(hypercall.TMEMC_RESTORE_BEGIN, 0, 0, 0)), neg(hypercall.EPERM)},
		{"RESTORE_BEGIN (A/B): 1", []string{"4.3.4", "4.6.6"}, nil, ctl(hypercall.TMEMC_RESTORE_BEGIN, 0, 0, 0), 1},
		{"SAVE_END without a client (A/B): -1", []string{"4.3.4", "4.6.6"}, nil, ctl(hypercall.TMEMC_SAVE_END, 3, 0, 0), neg(hypercall.EPERM)},
		{"SAVE_BEGIN without a client (C/D): ENOENT", genCD, nil, ctl(hypercall.TMEMC_SAVE_BEGIN, 3, 0, 0), neg(hypercall.ENOENT)},
		{"SAVE_BEGIN (C/D): 0", genCD, nil, withClient(ctl(hypercall.TMEMC_SAVE_BEGIN, 0, 0, 0)), 0},
		{"RESTORE_BEGIN on a client (C/D): EEXIST", genCD, nil, withClient(ctl(hypercall.TMEMC_RESTORE_BEGIN, 0, 0, 0)), neg(hypercall.EEXIST)},
		{"RESTORE_BEGIN for no domain (C/D): ENOMEM", genCD, nil, ctl(hypercall.TMEMC_RESTORE_BEGIN, 77, 0, 0), neg(hypercall.ENOMEM)},
		{"SAVE_END without a client (C/D): ENOENT", genCD, nil, ctl(hypercall.TMEMC_SAVE_END, 3, 0, 0), neg(hypercall.ENOENT)},
		{"SAVE_GET_NEXT_PAGE of an ephemeral pool: -1", genAll, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			r.poolID = 0
			return r.tmemCtl(hypercall.TMEMC_SAVE_GET_NEXT_PAGE, 0, 8192, 0, r.big.Addr())
		}), neg(hypercall.EPERM)},
		{"SAVE_GET_NEXT_PAGE buffer too small: ENOMEM", genAll, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			r.newPool(persFlags(r), 0, 0)
			r.poolID = 0
			return r.tmemCtl(hypercall.TMEMC_SAVE_GET_NEXT_PAGE, 0, 4096, 0, r.big.Addr())
		}, neg(hypercall.ENOMEM)},
		{"RESTORE_PUT_PAGE into no pool: -1", genAll, nil, ctl(hypercall.TMEMC_RESTORE_PUT_PAGE, 0, 4096, 0), neg(hypercall.EPERM)},
		{"RESTORE_PUT_PAGE size not 4096 (4.8+): EINVAL", genCD, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			return r.sysctl(hypercall.XEN_SYSCTL_tmem_op, r.iface, func(u []byte) {
				le32(u, 0, hypercall.TMEMC_RESTORE_PUT_PAGE)
				le32(u, 12, 100)
				le64(u, 48, r.big.Addr())
			})
		}), neg(hypercall.EINVAL)},
		{"RESTORE_PUT_PAGE from a bad buffer: EFAULT", genCD, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			return r.sysctl(hypercall.XEN_SYSCTL_tmem_op, r.iface, func(u []byte) {
				le32(u, 0, hypercall.TMEMC_RESTORE_PUT_PAGE)
				le32(u, 12, 4096)
				le64(u, 48, bad)
			})
		}), neg(hypercall.EFAULT)},

		// Generation C/D records.
		{"GET_CLIENT_INFO into a bad buffer: EFAULT", genCD, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_GET_CLIENT_INFO, 0, 20, 0, bad)
		}, neg(hypercall.EFAULT)},
		{"SET_CLIENT_INFO version 2: EOPNOTSUPP", genCD, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			return r.setClientInfo(0, 2, 16, 0, 0)
		}), neg(hypercall.EOPNOTSUPP)},
		{"SET_CLIENT_INFO maxpools 17: ERANGE", genCD, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			return r.setClientInfo(0, 1, 17, 0, 0)
		}), neg(hypercall.ERANGE)},
		{"SET_CLIENT_INFO of a non-client: ENOENT", genCD, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.setClientInfo(4, 1, 16, 0, 0)
		}, neg(hypercall.ENOENT)},
		{"SET_CLIENT_INFO all, no client: ENOENT", genCD, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.setClientInfo(allClients, 1, 16, 0, 0)
		}, neg(hypercall.ENOENT)},
		{"SET_CLIENT_INFO from a bad buffer: EFAULT", genCD, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_CLIENT_INFO, 0, 20, 0, bad)
		}), neg(hypercall.EFAULT)},
		{"GET_POOLS len%32: EINVAL", genCD, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_GET_POOLS, 0, 33, 0, r.poolRecs())
		}), neg(hypercall.EINVAL)},
		{"GET_POOLS 17 records: E2BIG", genCD, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_GET_POOLS, 0, 17*32, 0, r.poolRecs())
		}), neg(hypercall.E2BIG)},
		{"GET_POOLS of a non-client: EINVAL", genCD, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_GET_POOLS, allClients, 32, 0, r.poolRecs())
		}, neg(hypercall.EINVAL)},
		{"GET_POOLS into a bad buffer: EFAULT", genCD, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_GET_POOLS, 0, 32, 0, bad)
		}), neg(hypercall.EFAULT)},
		{"SET_POOLS len%32: EINVAL", []string{"4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_POOLS, 0, 31, 0, r.poolRecs())
		}, neg(hypercall.EINVAL)},
		{"SET_POOLS 17 records: E2BIG", []string{"4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_POOLS, 0, 17*32, 0, r.poolRecs())
		}, neg(hypercall.E2BIG)},
		{"SET_POOLS n_pages: EINVAL", []string{"4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_POOLS, 0, 32, 0, r.poolRecs([5]uint64{eph, 0, 1}))
		}, neg(hypercall.EINVAL)},
		{"SET_POOLS bad flags: EPERM", []string{"4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_POOLS, 0, 32, 0, r.poolRecs([5]uint64{eph | 0x4, 0}))
		}, neg(hypercall.EPERM)},
		{"SET_POOLS busy slot: EPERM", []string{"4.12.4"}, nil, withClient(func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_POOLS, 0, 32, 0, r.poolRecs([5]uint64{eph, 0}))
		}), neg(hypercall.EPERM)},
		{"SET_POOLS for no domain: ENOMEM", []string{"4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_POOLS, 99, 32, 0, r.poolRecs([5]uint64{eph, 0}))
		}, neg(hypercall.ENOMEM)},
		{"SET_POOLS returns the last pool id", []string{"4.9.4", "4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_POOLS, 0, 64, 0, r.poolRecs([5]uint64{eph, 2}, [5]uint64{pers, 5}))
		}, 5},
		{"SET_POOLS len 0 creates the client and returns 0", []string{"4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			if res := r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_POOLS, 0, 0, 0, 0); res != 0 {
				return res
			}
			_, res := r.list(0, false, 4096)
			return res
		}, 0},
		{"SET_AUTH for all clients: ENOMEM", []string{"4.9.4", "4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_AUTH, allClients, 32, 0, r.poolRecs([5]uint64{4, 0, 0, 1}))
		}, neg(hypercall.ENOMEM)},
		{"SET_AUTH: 1", []string{"4.9.4", "4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_AUTH, 0, 32, 0, r.poolRecs([5]uint64{4, 0, 0, 1}))
		}, 1},
		{"SET_AUTH table full: ENOMEM", []string{"4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			for i := uint64(0); i < 16; i++ {
				if res := r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_AUTH, 0, 32, 0, r.poolRecs([5]uint64{4, 0, 0, i})); res != 1 {
					t.Fatalf("auth %d: %d", i, res)
				}
			}
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_AUTH, 0, 32, 0, r.poolRecs([5]uint64{4, 0, 0, 99}))
		}, neg(hypercall.ENOMEM)},
		// The revoke answers 0, and tmemc_auth_pools returns "rc ?: i".
		{"SET_AUTH revoke of an unknown uuid: records processed", []string{"4.12.4"}, nil, func(t *testing.T, s *Sim, r *raw) int64 {
			return r.tmemCtl(hypercall.XEN_SYSCTL_TMEM_OP_SET_AUTH, 0, 32, 0, r.poolRecs([5]uint64{0, 0, 0, 1}))
		}, 1},
	}
}
