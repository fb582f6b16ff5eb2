package hypercall

// Op is a Xen hypercall number (__HYPERVISOR_* in xen/include/public/xen.h;
// constant in every release 4.0–4.22).
type Op uint64

const (
	OpEventChannel Op = 32 // __HYPERVISOR_event_channel_op
	OpXenVersion   Op = 17 // __HYPERVISOR_xen_version
	OpSysctl       Op = 35 // __HYPERVISOR_sysctl
	OpDomctl       Op = 36 // __HYPERVISOR_domctl
	OpTmem         Op = 38 // __HYPERVISOR_tmem_op
)

// String returns the hypercall's short name, or "op(N)" for an unknown one.
func (o Op) String() string {
	switch o {
	case OpEventChannel:
		return "event_channel_op"
	case OpXenVersion:
		return "xen_version"
	case OpSysctl:
		return "sysctl"
	case OpDomctl:
		return "domctl"
	case OpTmem:
		return "tmem_op"
	}
	return "op(" + itoa(uint64(o)) + ")"
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}

// Args holds the five register arguments of a hypercall.
type Args [5]uint64
