package xensim

import (
	"compress/flate"
	"fmt"
	"sync"
	"time"

	"github.com/xentmem/xentmem/hypercall"
	"github.com/xentmem/xentmem/hypercall/hypercalltest"
)

// TmemMode is how the emulated hypervisor was built and booted.
type TmemMode int

const (
	// TmemEnabled is tmem built in and booted with tmem=1.
	TmemEnabled TmemMode = iota
	// TmemDisabled is tmem built in but not enabled (the default of every
	// real release): guest tmem_op answers ENODEV; the 4.6–4.12 sysctl
	// path still answers, with empty data.
	TmemDisabled
	// TmemNotBuilt is a hypervisor built with CONFIG_TMEM=n (4.7–4.12):
	// tmem_op answers ENOSYS.
	TmemNotBuilt
)

// Config chooses what the simulator emulates. A nil *Config means the
// defaults: Xen 4.12.4 with tmem=1 on a 2 GiB host and a 512 MiB dom0, as
// in the real transcripts.
type Config struct {
	// Version is the Xen release, "4.0.0" … "4.22.0" (default "4.12.4").
	// It picks the ABI generation, the sysctl interface version and every
	// struct layout.
	Version string
	// Tmem selects enabled (default), disabled or not built.
	Tmem TmemMode
	// TmemCompress is the tmem_compress boot option: new clients start
	// with compression on.
	TmemCompress bool
	// TmemSharedAuth is the tmem_shared_auth boot option of 4.0–4.8;
	// from 4.9 shared-pool authorisation is always required.
	TmemSharedAuth bool

	// TotalPages is host memory in 4 KiB pages (default 524159).
	TotalPages uint64
	// FreePages is the free heap at start (physinfo free_pages). Default:
	// TotalPages minus dom0 minus 1/64 for Xen itself.
	FreePages uint64
	// Dom0MemoryKiB and Dom0MaxMemoryKiB are dom0_mem=X,max:Y (defaults
	// 512 MiB and the same as the memory).
	Dom0MemoryKiB    uint64
	Dom0MaxMemoryKiB uint64
	// Dom0VCPUs defaults to 1.
	Dom0VCPUs uint32

	// Clock returns the time; it drives CPU time and, on 4.0–4.3, the cycle
	// counters of LIST. Default time.Now.
	Clock func() time.Time

	// Commandline replaces the generated XENVER_commandline string.
	Commandline string
	// Physinfo details; zero values mean the 4.12.4 transcript's values.
	NrCPUs uint32
	CPUKHz uint32
	MaxMFN uint64
	HWCap  [8]uint32
	// PhysCapabilities overrides the physinfo capabilities word.
	PhysCapabilities uint32
}

var defaultHWCap = [8]uint32{0x0fcbf3fd, 0xf6d8320b, 0xec500800, 0x75, 0x5, 0x018843a9, 0xc, 0}

// Sim is a simulated Xen hypervisor behind the [hypercall.Caller]
// interface: it decodes the real argument layouts of the configured
// release and answers like that release. The Sim itself issues hypercalls
// as dom0; [Sim.Guest] returns Callers for other domains.
//
// A Sim is safe for concurrent use: one mutex serialises every hypercall
// and every Go method, as tmem's global lock serialises control calls.
type Sim struct {
	mu      sync.Mutex // guards everything below
	cfg     Config
	rel     release
	clock   func() time.Time
	cmdline string
	heap    heap
	doms    map[uint16]*domain
	guests  map[uint16]*hypercalltest.Caller
	tm      *tmem

	dom0 *hypercalltest.Caller // dom0's argument memory and entry point

	// sysctlCopy is Xen's private copy of the struct xen_sysctl being
	// served (8-byte aligned: it comes from make).
	sysctlCopy []byte

	zeroPage []byte // what an untouched guest frame reads as (never written)

	deflate  *flate.Writer // compression sizing (see compress.go)
	deflated *byteCounter
}

var _ hypercall.Caller = (*Sim)(nil)

// New boots a simulated hypervisor with dom0.
func New(cfg *Config) (*Sim, error) {
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	if c.Version == "" {
		c.Version = "4.12.4"
	}
	rel, err := parseRelease(c.Version)
	if err != nil {
		return nil, err
	}
	if c.Tmem == TmemNotBuilt && !rel.atLeast(4, 7) {
		return nil, fmt.Errorf("xensim: Xen %s cannot be built without tmem (CONFIG_TMEM exists from 4.7)", rel)
	}
	if c.TotalPages == 0 {
		c.TotalPages = 524159
	}
	if c.Dom0MemoryKiB == 0 {
		c.Dom0MemoryKiB = 512 << 10
	}
	if c.Dom0MaxMemoryKiB < c.Dom0MemoryKiB {
		c.Dom0MaxMemoryKiB = c.Dom0MemoryKiB
	}
	dom0Pages := c.Dom0MemoryKiB / 4
	if c.FreePages == 0 {
		if dom0Pages+c.TotalPages/64 >= c.TotalPages {
			return nil, fmt.Errorf("xensim: dom0 memory %d KiB does not fit in %d pages", c.Dom0MemoryKiB, c.TotalPages)
		}
		c.FreePages = c.TotalPages - dom0Pages - c.TotalPages/64
	}
	if c.FreePages+dom0Pages > c.TotalPages {
		return nil, fmt.Errorf("xensim: %d free pages and a %d-page dom0 exceed %d pages", c.FreePages, dom0Pages, c.TotalPages)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.NrCPUs == 0 {
		c.NrCPUs = 1
	}
	if c.CPUKHz == 0 {
		c.CPUKHz = 2003234
	}
	if c.MaxMFN == 0 {
		c.MaxMFN = c.TotalPages + 0x60
	}
	if c.HWCap == [8]uint32{} {
		c.HWCap = defaultHWCap
	}
	if c.PhysCapabilities == 0 {
		c.PhysCapabilities = rel.physCapabilities()
	}
	s := &Sim{cfg: c, rel: rel, clock: c.Clock, doms: make(map[uint16]*domain), guests: make(map[uint16]*hypercalltest.Caller)}
	s.sysctlCopy = make([]byte, sysctlSize)
	s.zeroPage = make([]byte, pageSize)
	s.cmdline = c.Commandline
	if s.cmdline == "" {
		s.cmdline = s.defaultCmdline()
	}
	s.heap = heap{free: c.FreePages, midsize: c.TotalPages / midsizeFrac}
	s.tm = newTmem(s, rel.tmemABI() && c.Tmem == TmemEnabled)
	s.doms[0] = s.newDomain(0, dom0Pages, DomainConfig{MaxMemoryKiB: c.Dom0MaxMemoryKiB, VCPUs: c.Dom0VCPUs})
	s.dom0 = hypercalltest.New(func(op hypercall.Op, args hypercall.Args, mem *hypercalltest.Memory) (uint64, error) {
		return s.handle(0, op, args, mem)
	})
	return s, nil
}

func (s *Sim) defaultCmdline() string {
	c := s.cfg
	line := fmt.Sprintf("console=com1 dom0_mem=%dM,max:%dM", c.Dom0MemoryKiB>>10, c.Dom0MaxMemoryKiB>>10)
	if s.rel.tmemABI() && c.Tmem == TmemEnabled {
		line += " tmem=1"
	}
	if c.TmemCompress {
		line += " tmem_compress=1"
	}
	if c.TmemSharedAuth {
		line += " tmem_shared_auth=1"
	}
	return line
}

// Version returns the emulated release, e.g. "4.12.4".
func (s *Sim) Version() string { return s.rel.String() }

// Hypercall issues a hypercall as dom0.
func (s *Sim) Hypercall(op hypercall.Op, args hypercall.Args) (uint64, error) {
	return s.dom0.Hypercall(op, args)
}

// Alloc allocates dom0 argument memory: the only memory dom0's hypercalls
// may point to; any other address is EFAULT.
func (s *Sim) Alloc(size int) (*hypercall.Buffer, error) { return s.dom0.Alloc(size) }

// Memory returns dom0's argument memory (for leak checks in tests).
func (s *Sim) Memory() *hypercalltest.Memory { return s.dom0.Memory() }

// handle serves one hypercall issued by domain id.
func (s *Sim) handle(id uint16, op hypercall.Op, args hypercall.Args, mem *hypercalltest.Memory) (uint64, error) {
	s.mu.Lock()
	d := s.doms[id]
	if d == nil {
		s.mu.Unlock()
		return 0, hypercall.ENODEV
	}
	s.tm.current = d
	var rc int64
	var err error
	switch op {
	case hypercall.OpXenVersion:
		rc, err = s.xenVersion(args, mem)
	case hypercall.OpSysctl:
		rc, err = s.sysctl(d, args[0], mem)
	case hypercall.OpTmem:
		rc = s.tmemOp(d, args[0], mem)
	default:
		err = hypercall.ENOSYS
	}
	s.tm.current = nil
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return result(rc)
}

// result converts Xen's long return value.
func result(rc int64) (uint64, error) {
	if rc < 0 {
		return 0, hypercall.Errno(-rc)
	}
	return uint64(rc), nil
}

// Xen errno values as negative return codes.
const (
	errEPERM      = int(hypercall.EPERM)
	errENOENT     = int(hypercall.ENOENT)
	errE2BIG      = int(hypercall.E2BIG)
	errENOMEM     = int(hypercall.ENOMEM)
	errEACCES     = int(hypercall.EACCES)
	errEFAULT     = int(hypercall.EFAULT)
	errEEXIST     = int(hypercall.EEXIST)
	errENODEV     = int(hypercall.ENODEV)
	errEINVAL     = int(hypercall.EINVAL)
	errENOSPC     = int(hypercall.ENOSPC)
	errERANGE     = int(hypercall.ERANGE)
	errENOSYS     = int(hypercall.ENOSYS)
	errEOPNOTSUPP = int(hypercall.EOPNOTSUPP)
	errEFROZEN    = int(hypercall.EFROZEN)
	errEEMPTY     = int(hypercall.EEMPTY)
)
