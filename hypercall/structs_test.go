package hypercall

import (
	"reflect"
	"testing"
)

// layout is one struct's expected size and field offsets, from
// xen-tmem-abi.md (§2.2, §3.2, §3.3, §4.4, §6, §8) and the C headers.
type layout struct {
	name   string
	v      any
	size   uintptr
	fields map[string]uintptr
}

var layouts = []layout{
	{"privcmd_hypercall", PrivcmdHypercall{}, 48, map[string]uintptr{"Op": 0, "Arg": 8}},
	{"xen_sysctl", Sysctl{}, 136, map[string]uintptr{"Cmd": 0, "InterfaceVersion": 4, "U": 8}},
	{"xen_sysctl_tmem_op", SysctlTmemOp{}, 56, map[string]uintptr{
		"Cmd": 0, "PoolID": 4, "CliID": 8, "Len": 12, "Arg": 16, "Pad": 20, "OID": 24, "Buf": 48}},
	{"xen_sysctl_getdomaininfolist", SysctlGetDomainInfoList{}, 24, map[string]uintptr{
		"FirstDomain": 0, "MaxDomains": 4, "Buffer": 8, "NumDomains": 16}},
	{"tmem_op", TmemOp{}, 56, map[string]uintptr{"Cmd": 0, "PoolID": 4, "U": 8}},
	{"tmem_op.u.creat", TmemOpCreat{}, 56, map[string]uintptr{"UUID": 8, "Flags": 24, "Arg1": 28}},
	{"tmem_op.u.ctrl", TmemOpCtrl{}, 56, map[string]uintptr{
		"Subop": 8, "CliID": 12, "Arg1": 16, "Arg2": 20, "OID": 24, "Buf": 48}},
	{"tmem_op.u.gen", TmemOpGen{}, 56, map[string]uintptr{
		"OID": 8, "Index": 32, "TmemOffset": 36, "PfnOffset": 40, "Len": 44, "CMFN": 48}},
	{"tmem_op(A0)", TmemOpA0{}, 40, map[string]uintptr{"Cmd": 0, "PoolID": 4, "U": 8}},
	{"tmem_op(A0).u.new", TmemOpA0New{}, 40, map[string]uintptr{"UUID": 8, "Flags": 24, "Arg1": 28}},
	{"tmem_op(A0).u.ctrl", TmemOpA0Ctrl{}, 40, map[string]uintptr{
		"Subop": 8, "CliID": 12, "Arg1": 16, "Arg2": 20, "Arg3": 24, "Buf": 32}},
	{"tmem_op(A0).u.gen", TmemOpA0Gen{}, 40, map[string]uintptr{
		"Object": 8, "Index": 16, "TmemOffset": 20, "PfnOffset": 24, "Len": 28, "CMFN": 32}},
	{"xen_tmem_client", TmemClient{}, 20, map[string]uintptr{
		"Version": 0, "MaxPools": 4, "NrPools": 8, "Flags": 12, "Weight": 16}},
	{"xen_tmem_pool_info", TmemPoolInfo{}, 32, map[string]uintptr{"Flags": 0, "ID": 4, "NPages": 8, "UUID": 16}},
	{"tmem_handle", TmemHandle{}, 32, map[string]uintptr{"PoolID": 0, "Index": 4, "OID": 8}},
	{"tmem_handle(A0)", TmemHandleA0{}, 16, map[string]uintptr{"PoolID": 0, "Index": 4, "OID": 8}},
	{"physinfo(4.0)", Physinfo40{}, 104, map[string]uintptr{
		"ThreadsPerCore": 0, "CoresPerSocket": 4, "NrCPUs": 8, "MaxNodeID": 12, "CPUKHz": 16,
		"TotalPages": 24, "FreePages": 32, "ScrubPages": 40, "HWCap": 48, "MaxCPUID": 80,
		"CPUToNode": 88, "Capabilities": 96}},
	{"physinfo(4.1)", Physinfo41{}, 96, map[string]uintptr{
		"NrCPUs": 8, "MaxCPUID": 12, "NrNodes": 16, "MaxNodeID": 20, "CPUKHz": 24,
		"TotalPages": 32, "FreePages": 40, "ScrubPages": 48, "HWCap": 56, "Capabilities": 88}},
	{"physinfo(4.3)", Physinfo43{}, 104, map[string]uintptr{
		"NrCPUs": 8, "MaxCPUID": 12, "NrNodes": 16, "MaxNodeID": 20, "CPUKHz": 24,
		"TotalPages": 32, "FreePages": 40, "ScrubPages": 48, "OutstandingPages": 56,
		"HWCap": 64, "Capabilities": 96}},
	{"physinfo(4.10)", Physinfo410{}, 104, map[string]uintptr{
		"NrCPUs": 8, "MaxCPUID": 12, "NrNodes": 16, "MaxNodeID": 20, "CPUKHz": 24,
		"Capabilities": 28, "TotalPages": 32, "FreePages": 40, "ScrubPages": 48,
		"OutstandingPages": 56, "MaxMFN": 64, "HWCap": 72}},
	{"physinfo(4.17)", Physinfo417{}, 112, map[string]uintptr{
		"NrCPUs": 8, "MaxCPUID": 12, "NrNodes": 16, "MaxNodeID": 20, "CPUKHz": 24,
		"Capabilities": 28, "ArchCapabilities": 32, "TotalPages": 40, "FreePages": 48,
		"ScrubPages": 56, "OutstandingPages": 64, "MaxMFN": 72, "HWCap": 80}},
	{"domaininfo(4.0)", DomainInfo40{}, 80, map[string]uintptr{
		"Domain": 0, "Flags": 4, "TotPages": 8, "MaxPages": 16, "ShrPages": 24,
		"SharedInfoFrame": 32, "CPUTime": 40, "NrOnlineVCPUs": 48, "MaxVCPUID": 52,
		"SSIDRef": 56, "Handle": 60, "CPUPool": 76}},
	{"domaininfo(4.2)", DomainInfo42{}, 88, map[string]uintptr{
		"TotPages": 8, "MaxPages": 16, "ShrPages": 24, "PagedPages": 32, "CPUTime": 48,
		"NrOnlineVCPUs": 56, "Handle": 68, "CPUPool": 84}},
	{"domaininfo(4.3)", DomainInfo43{}, 96, map[string]uintptr{
		"TotPages": 8, "MaxPages": 16, "OutstandingPages": 24, "ShrPages": 32,
		"PagedPages": 40, "SharedInfoFrame": 48, "CPUTime": 56, "NrOnlineVCPUs": 64,
		"MaxVCPUID": 68, "SSIDRef": 72, "Handle": 76, "CPUPool": 92}},
	{"domaininfo(4.16)", DomainInfo416{}, 104, map[string]uintptr{"GPAddrBits": 96}},
	{"domaininfo(4.17)", DomainInfo417{}, 112, map[string]uintptr{
		"GPAddrBits": 96, "EmulationFlags": 104, "MiscFlags": 108}},
}

// fieldOffset finds a (possibly promoted) field's offset.
func fieldOffset(t reflect.Type, name string) (uintptr, bool) {
	f, ok := t.FieldByName(name)
	if !ok {
		return 0, false
	}
	var off uintptr
	for i := range f.Index {
		sf := t.FieldByIndex(f.Index[:i+1])
		off += sf.Offset
	}
	return off, true
}

func TestLayouts(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			typ := reflect.TypeOf(l.v)
			if got := typ.Size(); got != l.size {
				t.Errorf("size = %d, want %d", got, l.size)
			}
			for name, want := range l.fields {
				got, ok := fieldOffset(typ, name)
				if !ok {
					t.Errorf("no field %s", name)
					continue
				}
				if got != want {
					t.Errorf("offset of %s = %d, want %d", name, got, want)
				}
			}
		})
	}
}

func TestIoctlNumbers(t *testing.T) {
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"IOCTL_PRIVCMD_HYPERCALL", IOCTL_PRIVCMD_HYPERCALL, 0x00305000},
		{"IOCTL_PRIVCMD_RESTRICT", ioc(iocNone, 'P', 6, 2), 0x00025006},
		{"IOCTL_PRIVCMD_MMAPBATCH_V2", ioc(iocNone, 'P', 4, 32), 0x00205004},
		{"IOCTL_PRIVCMD_DM_OP", ioc(iocNone, 'P', 5, 16), 0x00105005},
		{"IOCTL_EVTCHN_BIND_VIRQ", ioc(iocNone, 'E', 0, 4), 0x00044500},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}
