package xenctl

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/xentmem/xentmem/hypercall"
)

// Operation names used in errors.
const (
	opVersion      = "xen_version"
	opExtraversion = "xen_version extraversion"
	opPhysinfo     = "sysctl physinfo"
	opDomainList   = "sysctl getdomaininfolist"
	opTmemProbe    = "tmem_op control query-freeable (probe)"
)

// Offsets inside the Client's scratch page.
const (
	scratchSysctl = 0    // struct xen_sysctl, 136 bytes
	scratchTmemOp = 256  // struct tmem_op, 56 bytes
	scratchRecord = 320  // client / pool records, ≤ 16×32 bytes
	scratchString = 1024 // xen_version strings, ≤ 1024 bytes
	scratchSize   = 2048
)

// Config tunes a [Client]. A nil *Config means defaults.
type Config struct {
	// SysctlInterfaceVersion overrides the version chosen from the Xen
	// release, for a Xen newer than this package knows. Zero means: from the
	// table, or, for an unknown release, probed with physinfo.
	SysctlInterfaceVersion uint32
}

// Client issues typed Xen operations through a [hypercall.Caller]. It is
// safe for concurrent use; calls are serialised.
type Client struct {
	c     hypercall.Caller
	ver   Version
	gen   Generation
	iface uint32

	mu      sync.Mutex        // guards scratch and everything Xen writes into it, and tmem
	scratch *hypercall.Buffer // one page of argument memory, reused by every call
	tmem    *TmemStatus       // cached conclusive tmem probe
	listBuf *hypercall.Buffer // LIST text buffer, kept between calls (it can be megabytes)
}

// New reads the Xen version through c and returns a Client that uses the
// encodings of that release.
func New(c hypercall.Caller, cfg *Config) (*Client, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	buf, err := c.Alloc(scratchSize)
	if err != nil {
		return nil, fmt.Errorf("xenctl: allocate hypercall buffer: %w", err)
	}
	cl := &Client{c: c, scratch: buf}
	if err := cl.init(cfg); err != nil {
		buf.Close()
		return nil, err
	}
	return cl, nil
}

func (cl *Client) init(cfg *Config) error {
	rc, err := cl.c.Hypercall(hypercall.OpXenVersion, hypercall.Args{hypercall.XENVER_version})
	if err != nil {
		return opError(opVersion, kindVersion, err)
	}
	cl.ver = Version{Major: int(rc >> 16 & 0xFFFF), Minor: int(rc & 0xFFFF)}
	extra, err := cl.versionString(hypercall.XENVER_extraversion, hypercall.XenExtraversionLen, opExtraversion)
	if err != nil {
		return err
	}
	cl.ver.Extra = extra
	cl.gen = GenerationOf(cl.ver)
	switch iv, ok := SysctlInterfaceVersion(cl.ver); {
	case cfg.SysctlInterfaceVersion != 0:
		cl.iface = cfg.SysctlInterfaceVersion
	case ok:
		cl.iface = iv
	default:
		iv, err := cl.probeInterface()
		if err != nil {
			return err
		}
		cl.iface = iv
	}
	return nil
}

// probeInterface finds the sysctl interface version of an unknown release:
// Xen rejects every other value with EACCES before looking at the command.
func (cl *Client) probeInterface() (uint32, error) {
	for iv := uint32(0x30); iv >= 0x07; iv-- {
		cl.iface = iv
		if _, err := cl.Physinfo(); err == nil {
			return iv, nil
		} else if e, ok := err.(*Error); !ok || e.Errno != hypercall.EACCES {
			return 0, err
		}
	}
	return 0, &UnsupportedError{Op: "sysctl (no interface version accepted)", Running: cl.ver}
}

// Close releases the Client's hypercall memory. It does not close the Caller.
func (cl *Client) Close() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.listBuf != nil {
		cl.listBuf.Close()
		cl.listBuf = nil
	}
	return cl.scratch.Close()
}

// Version returns the running Xen's version.
func (cl *Client) Version() Version { return cl.ver }

// Generation returns the tmem ABI generation implied by the version. Whether
// tmem is actually usable is [Client.ProbeTmem]'s answer.
func (cl *Client) Generation() Generation { return cl.gen }

// SysctlInterfaceVersion returns the interface version the Client sends.
func (cl *Client) SysctlInterfaceVersion() uint32 { return cl.iface }

// Capabilities returns XENVER_capabilities, e.g. "xen-3.0-x86_64 hvm-3.0-x86_32 ...".
func (cl *Client) Capabilities() (string, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.versionString(hypercall.XENVER_capabilities, hypercall.XenCapabilitiesLen, "xen_version capabilities")
}

// Commandline returns Xen's own boot command line (XENVER_commandline).
func (cl *Client) Commandline() (string, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.versionString(hypercall.XENVER_commandline, hypercall.XenCommandlineLen, "xen_version commandline")
}

// versionString issues a string-returning XENVER_* sub-command. cl.mu held
// (or not yet shared).
func (cl *Client) versionString(cmd uint64, size int, op string) (string, error) {
	if cl.scratch.Bytes() == nil {
		return "", fmt.Errorf("xenctl: %s: %w", op, hypercall.ErrBufferClosed)
	}
	mem := cl.scratch.Bytes()[scratchString : scratchString+size]
	clear(mem)
	_, err := cl.c.Hypercall(hypercall.OpXenVersion, hypercall.Args{cmd, cl.scratch.AddrAt(scratchString)})
	if err != nil {
		return "", opError(op, kindVersion, err)
	}
	if i := bytes.IndexByte(mem, 0); i >= 0 {
		mem = mem[:i]
	}
	return string(mem), nil
}

// sysctlPrepare prepares the scratch struct xen_sysctl for cmd and returns
// its union. cl.mu held.
func (cl *Client) sysctlPrepare(op string, cmd uint32) ([]byte, error) {
	if cl.scratch.Bytes() == nil {
		return nil, fmt.Errorf("xenctl: %s: %w", op, hypercall.ErrBufferClosed)
	}
	b := cl.scratch.Bytes()[scratchSysctl : scratchSysctl+136]
	clear(b)
	s, _ := hypercall.ViewBytes[hypercall.Sysctl](b, 0)
	s.Cmd = cmd
	s.InterfaceVersion = cl.iface
	return s.U[:], nil
}

// sysctlIssue issues the prepared sysctl. cl.mu held.
func (cl *Client) sysctlIssue(op string, kind opKind) (uint64, error) {
	rc, err := cl.c.Hypercall(hypercall.OpSysctl, hypercall.Args{cl.scratch.AddrAt(scratchSysctl)})
	if err != nil {
		return 0, opError(op, kind, err)
	}
	return rc, nil
}
