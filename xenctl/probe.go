package xenctl

import (
	"errors"
	"fmt"

	"github.com/xentmem/xentmem/hypercall"
)

// TmemStatus is what [Client.ProbeTmem] found out about tmem.
type TmemStatus struct {
	// Available is true when tmem answers control operations.
	Available bool
	// Generation is the control ABI the hypervisor speaks (GenNone when
	// it has none).
	Generation Generation
	// Errno is the probe's answer when it was negative.
	Errno hypercall.Errno
	// Reason explains Available in a sentence fit for an administrator.
	Reason string
	// FreeableMiB is the probe's result on generation A (freeable memory).
	FreeableMiB uint64
}

// ProbeTmem finds out whether tmem is usable (xen-tmem-abi.md §1.4): it
// issues tmem_op TMEM_CONTROL QUERY_FREEABLE_MB, which creates no client,
// and reads the answer together with the version. A conclusive answer is
// cached.
func (cl *Client) ProbeTmem() (TmemStatus, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.tmem != nil {
		return *cl.tmem, nil
	}
	st, err := cl.probeTmem()
	if err == nil {
		cl.tmem = &st
	}
	return st, err
}

func (cl *Client) probeTmem() (TmemStatus, error) {
	if cl.scratch.Bytes() == nil {
		return TmemStatus{}, fmt.Errorf("xenctl: %s: %w", opTmemProbe, hypercall.ErrBufferClosed)
	}
	mem := cl.scratch.Bytes()[scratchTmemOp : scratchTmemOp+56]
	clear(mem)
	if cl.gen == GenA0 {
		op, _ := hypercall.ViewBytes[hypercall.TmemOpA0Ctrl](mem, 0)
		op.Cmd, op.Subop = hypercall.TMEM_CONTROL, hypercall.TMEMC_QUERY_FREEABLE_MB
	} else {
		op, _ := hypercall.ViewBytes[hypercall.TmemOpCtrl](mem, 0)
		op.Cmd, op.Subop = hypercall.TMEM_CONTROL, hypercall.TMEMC_QUERY_FREEABLE_MB
	}
	rc, err := cl.c.Hypercall(hypercall.OpTmem, hypercall.Args{cl.scratch.AddrAt(scratchTmemOp)})
	st := TmemStatus{Generation: cl.gen}
	if err == nil {
		if cl.gen != GenA0 && cl.gen != GenA1 {
			return st, fmt.Errorf("xenctl: %s: Xen %s (generation %s) answered %d where TMEM_CONTROL should be refused", opTmemProbe, cl.ver, cl.gen, rc)
		}
		st.Available, st.FreeableMiB = true, rc
		st.Reason = fmt.Sprintf("tmem enabled (Xen %s, control ABI %s, %d MiB freeable)", cl.ver, cl.gen, rc)
		return st, nil
	}
	var errno hypercall.Errno
	if !errors.As(err, &errno) {
		return st, opError(opTmemProbe, kindTmemControl, err)
	}
	st.Errno = errno
	switch errno {
	case hypercall.EOPNOTSUPP:
		if cl.gen < GenB {
			return st, opError(opTmemProbe, kindTmemControl, err)
		}
		st.Available = true
		st.Reason = fmt.Sprintf("tmem enabled (Xen %s, control ABI %s through sysctl)", cl.ver, cl.gen)
	case hypercall.ENODEV:
		st.Reason = fmt.Sprintf("tmem is built into Xen %s but disabled: boot Xen with tmem=1", cl.ver)
	case hypercall.ENOSYS:
		st.Generation = GenNone
		if cl.gen == GenNone {
			st.Reason = fmt.Sprintf("Xen %s has no tmem (removed in 4.13)", cl.ver)
		} else {
			st.Reason = fmt.Sprintf("Xen %s was built without tmem (CONFIG_TMEM=n)", cl.ver)
		}
	case hypercall.EPERM:
		st.Reason = fmt.Sprintf("an XSM/FLASK policy of Xen %s denies tmem_op to this domain", cl.ver)
	default:
		return st, opError(opTmemProbe, kindTmemControl, err)
	}
	return st, nil
}
