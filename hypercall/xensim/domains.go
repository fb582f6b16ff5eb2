package xensim

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// Domain errors returned by the Go methods of [Sim].
var (
	// ErrNoDomain means the domain id is not in use.
	ErrNoDomain = errors.New("xensim: no such domain")
	// ErrDomainExists means the requested domain id is taken.
	ErrDomainExists = errors.New("xensim: domain id in use")
	// ErrNoMemory means the host has not enough free memory; as on a
	// real Xen, memory held by tmem is not taken back for it (flush first).
	ErrNoMemory = errors.New("xensim: not enough free host memory")
)

// DomainConfig describes a domain to create. Xen knows no names: a domain
// is its id.
type DomainConfig struct {
	// ID is the domain id; 0 picks the lowest free id from 1.
	ID uint16
	// MemoryKiB is the memory the domain starts with (tot_pages).
	MemoryKiB uint64
	// MaxMemoryKiB is its maximum (max_pages); 0 means MemoryKiB.
	MaxMemoryKiB uint64
	// VCPUs defaults to 1.
	VCPUs uint32
	// HVM marks an HVM guest (the XEN_DOMINF_hvm_guest flag).
	HVM bool
	// Handle is the domain's UUID; zero picks one derived from the id.
	Handle [16]byte
}

// domain is one simulated domain.
type domain struct {
	id       uint16
	totPages uint64
	maxPages uint64
	vcpus    uint32
	hvm      bool
	dying    bool
	handle   [16]byte
	created  time.Time
	tmem     *client
	mem      guestMemory
}

// DomainInfo is the simulator's view of a domain, for tests.
type DomainInfo struct {
	ID       uint16
	TotPages uint64
	MaxPages uint64
	VCPUs    uint32
	HVM      bool
	// TmemClient reports whether the domain has a tmem client.
	TmemClient bool
}

// CreateDomain creates a domain and takes its memory from the free heap.
// It returns the new domain's id.
func (s *Sim) CreateDomain(cfg DomainConfig) (uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := cfg.ID
	if id == 0 {
		for id = 1; s.doms[id] != nil; id++ {
			if id >= 0x7FEF {
				return 0, fmt.Errorf("xensim: create domain: %w: no free domain id", ErrDomainExists)
			}
		}
	} else if s.doms[id] != nil {
		return 0, fmt.Errorf("xensim: create domain %d: %w", id, ErrDomainExists)
	} else if id >= 0x7FF0 {
		return 0, fmt.Errorf("xensim: create domain %d: reserved domain id", id)
	}
	pages := cfg.MemoryKiB / 4
	if pages > s.heap.free {
		return 0, fmt.Errorf("xensim: create domain %d with %d KiB: %w (%d KiB free)", id, cfg.MemoryKiB, ErrNoMemory, s.heap.free*4)
	}
	s.heap.free -= pages
	d := s.newDomain(id, pages, cfg)
	s.doms[id] = d
	return id, nil
}

func (s *Sim) newDomain(id uint16, pages uint64, cfg DomainConfig) *domain {
	max := cfg.MaxMemoryKiB / 4
	if max < pages {
		max = pages
	}
	vcpus := cfg.VCPUs
	if vcpus == 0 {
		vcpus = 1
	}
	h := cfg.Handle
	if h == [16]byte{} && id != 0 {
		h = [16]byte{0x78, 0x65, 0x6e, 0x73, 0x69, 0x6d, 0x40, 0x00, 0x80, 0, 0, 0, 0, 0, byte(id >> 8), byte(id)}
	}
	return &domain{id: id, totPages: pages, maxPages: max, vcpus: vcpus, hvm: cfg.HVM, handle: h,
		created: s.clock(), mem: guestMemory{frames: max, zero: s.zeroPage}}
}

// DestroyDomain kills a domain: its tmem pools are flushed (tmem_destroy),
// its memory goes back to the heap and its id becomes free.
func (s *Sim) DestroyDomain(id uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.doms[id]
	if d == nil || id == 0 {
		return fmt.Errorf("xensim: destroy domain %d: %w", id, ErrNoDomain)
	}
	d.dying = true
	s.tm.current = s.doms[0]
	s.tm.destroyDomain(d)
	s.tm.current = nil
	s.freeHeap(d.totPages)
	d.totPages = 0
	delete(s.doms, id)
	delete(s.guests, id)
	return nil
}

// SetDomainMemory changes a domain's current memory (a balloon target
// reached at once): growing takes pages from the free heap, shrinking
// gives them back.
func (s *Sim) SetDomainMemory(id uint16, kib uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.doms[id]
	if d == nil {
		return fmt.Errorf("xensim: set memory of domain %d: %w", id, ErrNoDomain)
	}
	want := kib / 4
	switch {
	case want > d.maxPages:
		return fmt.Errorf("xensim: set memory of domain %d to %d KiB: above its maximum %d KiB", id, kib, d.maxPages*4)
	case want > d.totPages:
		for d.totPages < want {
			if !s.allocDomPage(d) {
				return fmt.Errorf("xensim: set memory of domain %d to %d KiB: %w", id, kib, ErrNoMemory)
			}
		}
	case want < d.totPages:
		s.freeHeap(d.totPages - want)
		d.totPages = want
	}
	return nil
}

// SetDomainMaxMemory changes a domain's max_pages.
func (s *Sim) SetDomainMaxMemory(id uint16, kib uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.doms[id]
	if d == nil {
		return fmt.Errorf("xensim: set max memory of domain %d: %w", id, ErrNoDomain)
	}
	d.maxPages = kib / 4
	if d.mem.frames < d.maxPages {
		d.mem.frames = d.maxPages
	}
	return nil
}

// Domains lists the domains in id order.
func (s *Sim) Domains() []DomainInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DomainInfo
	for _, id := range s.domainIDs() {
		d := s.doms[id]
		out = append(out, DomainInfo{ID: id, TotPages: d.totPages, MaxPages: d.maxPages, VCPUs: d.vcpus, HVM: d.hvm, TmemClient: d.tmem != nil})
	}
	return out
}

func (s *Sim) domainIDs() []uint16 {
	ids := make([]uint16, 0, len(s.doms))
	for id := range s.doms {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// getDomainInfoList serves XEN_SYSCTL_getdomaininfolist: records for the
// domains from first_domain on, in id order, in the release's layout.
func (s *Sim) getDomainInfoList(sc *hypercall.Sysctl, mem *hypercalltest.Memory) (int64, error) {
	req, _ := hypercall.ViewBytes[hypercall.SysctlGetDomainInfoList](sc.U[:], 0)
	size := s.domainInfoSize()
	var n uint32
	for _, id := range s.domainIDs() {
		if id < req.FirstDomain {
			continue
		}
		if n == req.MaxDomains {
			break
		}
		rec, err := mem.Bytes(req.Buffer+uint64(n)*uint64(size), size)
		if err != nil {
			return 0, err
		}
		s.encodeDomainInfo(s.doms[id], rec)
		n++
	}
	req.NumDomains = n
	return 0, nil
}

func (s *Sim) domainInfoSize() int {
	switch {
	case !s.rel.atLeast(4, 2):
		return hypercall.SizeOf[hypercall.DomainInfo40]()
	case !s.rel.atLeast(4, 3):
		return hypercall.SizeOf[hypercall.DomainInfo42]()
	case !s.rel.atLeast(4, 16):
		return hypercall.SizeOf[hypercall.DomainInfo43]()
	case !s.rel.atLeast(4, 17):
		return hypercall.SizeOf[hypercall.DomainInfo416]()
	}
	return hypercall.SizeOf[hypercall.DomainInfo417]()
}

// encodeDomainInfo writes struct xen_domctl_getdomaininfo for d.
func (s *Sim) encodeDomainInfo(d *domain, rec []byte) {
	clear(rec)
	flags := uint32(hypercall.XEN_DOMINF_blocked)
	if d.id == 0 {
		flags = hypercall.XEN_DOMINF_running
	}
	if d.hvm {
		flags |= hypercall.XEN_DOMINF_hvm_guest | hypercall.XEN_DOMINF_hap
	}
	if d.dying {
		flags |= hypercall.XEN_DOMINF_dying
	}
	cpu := uint64(s.clock().Sub(d.created).Nanoseconds()) / 100 // a guest that idles 99% of the time
	switch {
	case !s.rel.atLeast(4, 2):
		r, _ := hypercall.ViewBytes[hypercall.DomainInfo40](rec, 0)
		*r = hypercall.DomainInfo40{Domain: d.id, Flags: flags, TotPages: d.totPages, MaxPages: d.maxPages,
			CPUTime: cpu, NrOnlineVCPUs: d.vcpus, MaxVCPUID: d.vcpus - 1, Handle: d.handle}
	case !s.rel.atLeast(4, 3):
		r, _ := hypercall.ViewBytes[hypercall.DomainInfo42](rec, 0)
		*r = hypercall.DomainInfo42{Domain: d.id, Flags: flags, TotPages: d.totPages, MaxPages: d.maxPages,
			CPUTime: cpu, NrOnlineVCPUs: d.vcpus, MaxVCPUID: d.vcpus - 1, Handle: d.handle}
	default:
		r, _ := hypercall.ViewBytes[hypercall.DomainInfo43](rec, 0)
		*r = hypercall.DomainInfo43{Domain: d.id, Flags: flags, TotPages: d.totPages, MaxPages: d.maxPages,
			CPUTime: cpu, NrOnlineVCPUs: d.vcpus, MaxVCPUID: d.vcpus - 1, Handle: d.handle}
		if s.rel.atLeast(4, 16) {
			rec[96] = 52 // gpaddr_bits
		}
	}
}
