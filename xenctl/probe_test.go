package xenctl

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/xentmem/xentmem/hypercall"
)

func TestProbeTmem(t *testing.T) {
	tests := []struct {
		name      string
		ver       Version
		errno     hypercall.Errno
		rc        uint64
		available bool
		gen       Generation
		reason    string
		wantErr   error
	}{
		{"4.17 no tmem", Version{4, 17, ".7"}, hypercall.ENOSYS, 0, false, GenNone, "Xen 4.17.7 has no tmem (removed in 4.13)", nil},
		{"4.12 enabled", Version{4, 12, ".4"}, hypercall.EOPNOTSUPP, 0, true, GenD, "control ABI D through sysctl", nil},
		{"4.12 not built in", Version{4, 12, ".4"}, hypercall.ENOSYS, 0, false, GenNone, "built without tmem", nil},
		{"4.8 disabled", Version{4, 8, ".0"}, hypercall.ENODEV, 0, false, GenC, "boot Xen with tmem=1", nil},
		{"4.5 enabled", Version{4, 5, ".0"}, 0, 6, true, GenA1, "6 MiB freeable", nil},
		{"4.0.1 enabled", Version{4, 0, ".1"}, 0, 0, true, GenA0, "control ABI A0", nil},
		{"4.3 XSM", Version{4, 3, ".0"}, hypercall.EPERM, 0, false, GenA1, "XSM/FLASK", nil},
		{"4.7 odd success", Version{4, 7, ".0"}, 0, 3, false, GenB, "", ErrFailed},
		{"4.4 odd EOPNOTSUPP", Version{4, 4, ".0"}, hypercall.EOPNOTSUPP, 0, false, GenA1, "", ErrNotSupported},
		{"4.12 EFAULT", Version{4, 12, ".4"}, hypercall.EFAULT, 0, false, GenD, "", ErrFault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iv, _ := SysctlInterfaceVersion(tt.ver)
			f := &fakeXen{t: t, ver: tt.ver, iface: iv, tmemErrno: tt.errno, tmemRC: tt.rc}
			cl := f.client(t)
			st, err := cl.ProbeTmem()
			if tt.wantErr != nil || tt.name == "4.7 odd success" {
				if err == nil {
					t.Fatalf("want an error, got %+v", st)
				}
				if tt.wantErr != nil && tt.wantErr != ErrFailed && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Available != tt.available || st.Generation != tt.gen || !strings.Contains(st.Reason, tt.reason) {
				t.Errorf("got %+v; want available=%v gen=%v reason containing %q", st, tt.available, tt.gen, tt.reason)
			}
			if st.Errno != tt.errno {
				t.Errorf("Errno = %v, want %v", st.Errno, tt.errno)
			}
			// The probe is TMEM_CONTROL / QUERY_FREEABLE_MB: cmd 0 at 0, sub-op 8 at 8.
			if c, s := binary.LittleEndian.Uint32(f.lastOp[0:]), binary.LittleEndian.Uint32(f.lastOp[8:]); c != 0 || s != 8 {
				t.Errorf("probe sent cmd %d subop %d, want 0 and 8", c, s)
			}
			// Conclusive answers are cached: no second hypercall.
			f.lastOp = nil
			if _, err := cl.ProbeTmem(); err != nil || f.lastOp != nil {
				t.Errorf("second probe: err %v, hypercall issued %v", err, f.lastOp != nil)
			}
		})
	}
}
