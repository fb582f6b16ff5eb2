//go:build linux

package nbd

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// Values printed by a C program including <sys/ioctl.h> and
// <linux/nbd.h> (linux-libc-dev 6.1, x86_64).
func TestIoctlNumbers(t *testing.T) {
	base := uint(0)
	switch runtime.GOARCH {
	case "ppc", "ppc64", "ppc64le", "mips", "mipsle", "mips64", "mips64le", "sparc", "sparc64":
		base = 1 << 29 // _IOC_NONE = 1 at bit 29 there
	}
	tests := []struct {
		name string
		nr   uint
		want uint
	}{
		{"NBD_SET_SOCK", nrSetSock, 0xab00},
		{"NBD_SET_BLKSIZE", nrSetBlksize, 0xab01},
		{"NBD_SET_SIZE", nrSetSize, 0xab02},
		{"NBD_DO_IT", nrDoIt, 0xab03},
		{"NBD_CLEAR_SOCK", nrClearSock, 0xab04},
		{"NBD_SET_SIZE_BLOCKS", nrSetSizeBlocks, 0xab07},
		{"NBD_DISCONNECT", nrDisconnect, 0xab08},
		{"NBD_SET_TIMEOUT", nrSetTimeout, 0xab09},
		{"NBD_SET_FLAGS", nrSetFlags, 0xab0a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ioctlIO(nbdIoctlType, tt.nr); got != base|tt.want {
				t.Errorf("ioctlIO(0xab, %d) = %#x, want %#x", tt.nr, got, base|tt.want)
			}
			if got := ioctlName(tt.nr); got != tt.name {
				t.Errorf("ioctlName(%d) = %q", tt.nr, got)
			}
		})
	}
}

// The attribute and command numbers of <linux/nbd-netlink.h> and the
// netlink values x/sys/unix provides, as printed by the same C program.
func TestNetlinkConstants(t *testing.T) {
	got := []int{nbdGenlVersion, nbdCmdConnect, nbdCmdDisconnect, nbdAttrIndex, nbdAttrSizeBytes,
		nbdAttrBlockSizeBytes, nbdAttrTimeout, nbdAttrServerFlags, nbdAttrClientFlags, nbdAttrSockets,
		nbdAttrDeadConnTimeout, nbdSockItem, nbdSockFD,
		unix.GENL_ID_CTRL, unix.CTRL_CMD_GETFAMILY, unix.CTRL_ATTR_FAMILY_ID, unix.CTRL_ATTR_FAMILY_NAME,
		unix.NLM_F_REQUEST, unix.NLM_F_ACK, unix.NLMSG_ERROR, unix.NLA_F_NESTED, unix.NETLINK_EXT_ACK,
		unix.NETLINK_CAP_ACK, unix.NLM_F_CAPPED, unix.NLM_F_ACK_TLVS, unix.NLMSGERR_ATTR_MSG,
		unix.NLMSG_HDRLEN, unix.GENL_HDRLEN, unix.SizeofNlMsgerr}
	want := []int{1, 1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1,
		0x10, 3, 1, 2, 1, 4, 2, 0x8000, 11, 10, 0x100, 0x200, 1, 16, 4, 20}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("constants (-want +got):\n%s", diff)
	}
	if nbdMajor != 43 {
		t.Errorf("nbdMajor = %d", nbdMajor)
	}
}

func requireLittleEndian(t *testing.T) {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("golden netlink messages are little-endian (host byte order)")
	}
}

func TestEncodeNetlink(t *testing.T) {
	requireLittleEndian(t)
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{
			name: "CTRL_CMD_GETFAMILY nbd",
			got:  encodeGetFamily(1, "nbd"),
			want: []byte{
				0x1c, 0, 0, 0, // nlmsg_len 28
				0x10, 0, // nlmsg_type GENL_ID_CTRL
				0x05, 0, // NLM_F_REQUEST|NLM_F_ACK
				1, 0, 0, 0, // seq
				0, 0, 0, 0, // pid: to the kernel
				3, 1, 0, 0, // genlmsghdr: CTRL_CMD_GETFAMILY, version 1
				8, 0, 2, 0, 'n', 'b', 'd', 0, // CTRL_ATTR_FAMILY_NAME "nbd\0"
			},
		},
		{
			name: "NBD_CMD_CONNECT two sockets",
			got: encodeConnect(0x1a, 7, &connectParams{index: 3, size: 16 << 20, blockSize: 512,
				flags: 0x0d6d, fds: []int{5, 6}}),
			want: []byte{
				0x5c, 0, 0, 0, // nlmsg_len 92
				0x1a, 0, // the nbd family id
				0x05, 0, // NLM_F_REQUEST|NLM_F_ACK
				7, 0, 0, 0, // seq
				0, 0, 0, 0, // pid
				1, 1, 0, 0, // NBD_CMD_CONNECT, NBD_GENL_VERSION
				8, 0, 1, 0, 3, 0, 0, 0, // NBD_ATTR_INDEX u32 3
				12, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, // NBD_ATTR_SIZE_BYTES u64 16 MiB
				12, 0, 3, 0, 0, 2, 0, 0, 0, 0, 0, 0, // NBD_ATTR_BLOCK_SIZE_BYTES u64 512
				12, 0, 5, 0, 0x6d, 0x0d, 0, 0, 0, 0, 0, 0, // NBD_ATTR_SERVER_FLAGS u64
				28, 0, 7, 0x80, // NBD_ATTR_SOCKETS | NLA_F_NESTED
				12, 0, 1, 0x80, // NBD_SOCK_ITEM | NLA_F_NESTED
				8, 0, 1, 0, 5, 0, 0, 0, // NBD_SOCK_FD u32 5
				12, 0, 1, 0x80, // NBD_SOCK_ITEM | NLA_F_NESTED
				8, 0, 1, 0, 6, 0, 0, 0, // NBD_SOCK_FD u32 6
			},
		},
		{
			name: "NBD_CMD_CONNECT with timeouts",
			got: encodeConnect(0x1a, 8, &connectParams{index: 0, size: 1 << 30, blockSize: 4096,
				flags: 0x3, timeout: 30, deadConn: 10, fds: []int{9}}),
			want: []byte{
				0x68, 0, 0, 0, // nlmsg_len 104
				0x1a, 0, 0x05, 0, 8, 0, 0, 0, 0, 0, 0, 0, // type, flags, seq 8, pid
				1, 1, 0, 0, // NBD_CMD_CONNECT, version 1
				8, 0, 1, 0, 0, 0, 0, 0, // NBD_ATTR_INDEX 0
				12, 0, 2, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, // NBD_ATTR_SIZE_BYTES 1 GiB
				12, 0, 3, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, // NBD_ATTR_BLOCK_SIZE_BYTES 4096
				12, 0, 4, 0, 30, 0, 0, 0, 0, 0, 0, 0, // NBD_ATTR_TIMEOUT 30 s
				12, 0, 5, 0, 3, 0, 0, 0, 0, 0, 0, 0, // NBD_ATTR_SERVER_FLAGS HAS_FLAGS|READ_ONLY
				12, 0, 8, 0, 10, 0, 0, 0, 0, 0, 0, 0, // NBD_ATTR_DEAD_CONN_TIMEOUT 10 s
				16, 0, 7, 0x80, // NBD_ATTR_SOCKETS
				12, 0, 1, 0x80, // NBD_SOCK_ITEM
				8, 0, 1, 0, 9, 0, 0, 0, // NBD_SOCK_FD 9
			},
		},
		{
			name: "NBD_CMD_DISCONNECT",
			got:  encodeDisconnect(0x1a, 9, 2),
			want: []byte{
				0x1c, 0, 0, 0, // nlmsg_len 28
				0x1a, 0, 0x05, 0, 9, 0, 0, 0, 0, 0, 0, 0, // type, flags, seq 9, pid
				2, 1, 0, 0, // NBD_CMD_DISCONNECT, version 1
				8, 0, 1, 0, 2, 0, 0, 0, // NBD_ATTR_INDEX 2
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

// nlReply builds a netlink message as the kernel sends it.
func nlReply(typ, flags uint16, seq uint32, payload []byte) []byte {
	ne := binary.NativeEndian
	b := ne.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(payload)))
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, flags)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// nlError builds NLMSG_ERROR for req with errno (0: an ack) and, if msg
// is set, an extended-ack message after the capped request header.
func nlError(req []byte, errno unix.Errno, msg string) []byte {
	ne := binary.NativeEndian
	p := ne.AppendUint32(nil, uint32(-int32(errno)))
	p = append(p, req[:unix.NLMSG_HDRLEN]...)
	flags := uint16(unix.NLM_F_CAPPED)
	if msg != "" {
		flags |= unix.NLM_F_ACK_TLVS
		m := &nlBuilder{b: p}
		m.attr(unix.NLMSGERR_ATTR_MSG, append([]byte(msg), 0))
		p = m.b
	}
	return nlReply(unix.NLMSG_ERROR, flags, ne.Uint32(req[8:]), p)
}

// genlPayload is a generic netlink reply payload: genlmsghdr and attrs.
func genlPayload(cmd uint8, attrs func(m *nlBuilder)) []byte {
	m := &nlBuilder{b: []byte{cmd, 1, 0, 0}}
	attrs(m)
	return m.b
}

func TestParseAck(t *testing.T) {
	req := encodeDisconnect(0x1a, 4, 0)
	tests := []struct {
		name      string
		msg       []byte
		wantErrno unix.Errno
		wantText  string
	}{
		{name: "ack", msg: nlError(req, 0, "")},
		{name: "EBUSY", msg: nlError(req, unix.EBUSY, ""), wantErrno: unix.EBUSY},
		{name: "EINVAL with text", msg: nlError(req, unix.EINVAL, "Attribute failed policy validation"),
			wantErrno: unix.EINVAL, wantText: "Attribute failed policy validation"},
		{name: "uncapped request echo", wantErrno: unix.EPERM, wantText: "no",
			msg: func() []byte {
				e := unix.EPERM
				p := binary.NativeEndian.AppendUint32(nil, uint32(-int32(e)))
				p = append(p, req...)
				m := &nlBuilder{b: p}
				m.attr(unix.NLMSGERR_ATTR_MSG, []byte("no\x00"))
				return nlReply(unix.NLMSG_ERROR, unix.NLM_F_ACK_TLVS, 4, m.b)
			}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := parseMessages(tt.msg)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("parseMessages: %d messages, %v", len(msgs), err)
			}
			errno, text, err := parseAck(msgs[0])
			if err != nil || errno != tt.wantErrno || text != tt.wantText {
				t.Errorf("parseAck = %v, %q, %v; want %v, %q", errno, text, err, tt.wantErrno, tt.wantText)
			}
		})
	}
	if _, err := parseMessages([]byte{40, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); !errors.Is(err, ErrProtocol) {
		t.Errorf("overlong message: %v", err)
	}
}

// fakeKernel answers generic netlink requests on the other end of a
// SOCK_SEQPACKET pair the way the kernel's controller and nbd family do.
// It returns the requests it saw (after the connection closes).
func fakeKernel(fd int, busy bool) <-chan [][]byte {
	seen := make(chan [][]byte, 1)
	go func() {
		var reqs [][]byte
		defer func() { seen <- reqs; unix.Close(fd) }()
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(fd, buf)
			if err != nil || n == 0 {
				return
			}
			req := append([]byte(nil), buf[:n]...)
			reqs = append(reqs, req)
			ne := binary.NativeEndian
			typ, seq, cmd := ne.Uint16(req[4:]), ne.Uint32(req[8:]), req[16]
			attrs, _ := parseAttrs(req[unix.NLMSG_HDRLEN+unix.GENL_HDRLEN:])
			var out []byte
			switch {
			case typ == unix.GENL_ID_CTRL && string(attrs[unix.CTRL_ATTR_FAMILY_NAME]) == "nbd\x00":
				out = nlReply(unix.GENL_ID_CTRL, 0, seq, genlPayload(unix.CTRL_CMD_NEWFAMILY, func(m *nlBuilder) {
					m.attr(unix.CTRL_ATTR_FAMILY_ID, ne.AppendUint16(nil, 0x1a))
					m.attr(unix.CTRL_ATTR_FAMILY_NAME, []byte("nbd\x00"))
				}))
				out = append(out, nlError(req, 0, "")...)
			case typ == unix.GENL_ID_CTRL:
				out = nlError(req, unix.ENOENT, "")
			case typ == 0x1a && cmd == nbdCmdConnect && busy:
				out = nlError(req, unix.EBUSY, "")
			case typ == 0x1a && cmd == nbdCmdConnect:
				// A stale message first: execute must skip other sequence numbers.
				out = nlReply(0x1a, 0, seq-1, genlPayload(nbdCmdConnect, func(m *nlBuilder) { m.u32(nbdAttrIndex, 99) }))
				out = append(out, nlReply(0x1a, 0, seq, genlPayload(nbdCmdConnect, func(m *nlBuilder) {
					m.u32(nbdAttrIndex, ne.Uint32(attrs[nbdAttrIndex]))
				}))...)
				out = append(out, nlError(req, 0, "")...)
			case typ == 0x1a && cmd == nbdCmdDisconnect:
				out = nlError(req, 0, "")
			default:
				out = nlError(req, unix.EOPNOTSUPP, "unexpected request")
			}
			if _, err := unix.Write(fd, out); err != nil {
				return
			}
		}
	}()
	return seen
}

func TestGenlConnFake(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(map[bool]string{false: "connect", true: "busy"}[busy], func(t *testing.T) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			seen := fakeKernel(fds[1], busy)
			c := newGenlConn(fds[0])
			if _, err := c.family("nbd2"); !errors.Is(err, unix.ENOENT) || !noNetlinkFamily(err) {
				t.Errorf("unknown family: %v", err)
			}
			id, err := c.family("nbd")
			if err != nil || id != 0x1a {
				t.Fatalf("family = %#x, %v", id, err)
			}
			p := &connectParams{index: 1, size: 1 << 20, blockSize: 512, flags: 1, fds: []int{7}}
			idx, err := c.connect(id, p)
			if busy {
				var ke *kernelError
				if !errors.Is(err, unix.EBUSY) || !errors.As(err, &ke) || ke.Op != opNetlinkConnect {
					t.Errorf("connect to a busy device: %v", err)
				}
			} else if err != nil || idx != 1 {
				t.Errorf("connect = %d, %v", idx, err)
			}
			if err := c.disconnect(id, 1); err != nil {
				t.Errorf("disconnect: %v", err)
			}
			c.Close()
			reqs := <-seen
			want := [][]byte{encodeGetFamily(1, "nbd2"), encodeGetFamily(2, "nbd"), encodeConnect(0x1a, 3, p),
				encodeDisconnect(0x1a, 4, 1)}
			if diff := cmp.Diff(want, reqs); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKernelErrorHint(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"EPERM", &kernelError{Op: opNetlinkConnect, Err: unix.EPERM}, "CAP_SYS_ADMIN"},
		{"EBUSY", &kernelError{Op: "ioctl NBD_SET_SOCK", Err: unix.EBUSY}, "/dev/nbd3 is in use"},
		{"no family", &kernelError{Op: opNetlinkGetFamily, Err: unix.ENOENT}, "no nbd netlink family"},
		{"no device", &kernelError{Op: opDevice, Err: unix.ENXIO}, "modprobe nbd nbds_max"},
		{"kernel text", &kernelError{Op: opNetlinkConnect, Err: unix.EINVAL, Msg: "bad attr"}, "(kernel: bad attr)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := addHint(tt.err, "/dev/nbd3", 3)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q lacks %q", err, tt.want)
			}
			if !errors.Is(err, tt.err.(*kernelError).Err) {
				t.Errorf("%v does not unwrap to its errno", err)
			}
		})
	}
}

func TestDeviceIndex(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nbd3")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dev     string
		want    int
		wantErr bool
	}{
		{dev: "/dev/nbd12345", want: 12345}, // absent: netlink may create it
		{dev: "/dev/sda", wantErr: true},
		{dev: "/dev/nbd", wantErr: true},
		{dev: "/dev/nbd1p1", wantErr: true},
		{dev: "/dev/null", wantErr: true},
		{dev: file, wantErr: true},                            // a regular file
		{dev: filepath.Join(dir, "nbd4"), wantErr: true},      // absent outside /dev
		{dev: "nbd0", wantErr: true},                          // relative, absent here
		{dev: "/dev/nbd99999999", wantErr: true},              // too many digits
		{dev: filepath.Join(dir, "x", "nbd0"), wantErr: true}, // absent outside /dev
	}
	for _, tt := range tests {
		t.Run(tt.dev, func(t *testing.T) {
			got, err := deviceIndex(tt.dev)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("deviceIndex = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("%v does not wrap ErrConfig", err)
			}
		})
	}
}

func TestAttachConfigErrors(t *testing.T) {
	dev := nullDevice{}
	srv, err := NewServer(&Config{Exports: []Export{
		{Name: "one", Device: dev, Size: 1 << 20},
		{Name: "multi", Device: dev, Size: 1 << 20, MultiConn: true},
		{Name: "tiny", Device: dev, Size: 100},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  *AttachConfig
	}{
		{"nil", nil},
		{"bad device", &AttachConfig{Device: "/dev/sda"}},
		{"no export", &AttachConfig{Device: "/dev/nbd9999", Export: "none"}},
		{"multi-conn needed", &AttachConfig{Device: "/dev/nbd9999", Export: "one", Connections: 2}},
		{"too many connections", &AttachConfig{Device: "/dev/nbd9999", Export: "multi", Connections: 65}},
		{"block size 1000", &AttachConfig{Device: "/dev/nbd9999", BlockSize: 1000}},
		{"block size 256", &AttachConfig{Device: "/dev/nbd9999", BlockSize: 256}},
		{"block size 1 MiB", &AttachConfig{Device: "/dev/nbd9999", BlockSize: 1 << 20}},
		{"export below a block", &AttachConfig{Device: "/dev/nbd9999", Export: "tiny"}},
		{"negative timeout", &AttachConfig{Device: "/dev/nbd9999", Timeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := srv.Attach(t.Context(), tt.cfg)
			if !errors.Is(err, ErrConfig) || a != nil {
				t.Errorf("Attach = %v, %v; want ErrConfig", a, err)
			}
		})
	}
}

func TestConnectParams(t *testing.T) {
	srv, err := NewServer(&Config{Exports: []Export{
		{Name: "ro", Device: nullDevice{}, Size: 3 << 20, ReadOnly: true, MultiConn: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := &AttachConfig{Device: "/dev/nbd2", Timeout: 1500 * time.Millisecond, DeadConnTimeout: time.Minute}
	p, _, err := srv.connectParams(c, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := &connectParams{index: 2, size: 3 << 20, blockSize: 512, timeout: 2, deadConn: 60,
		// HAS_FLAGS, READ_ONLY, SEND_FLUSH, SEND_FUA, CAN_MULTI_CONN, SEND_CACHE;
		// no SEND_DF: the kernel negotiates no structured replies.
		flags: 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<8 | 1<<10}
	if diff := cmp.Diff(want, p, cmp.AllowUnexported(connectParams{})); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	if c.Connections != 1 || c.Sysfs != "/sys" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestBlockAsyncSignals(t *testing.T) {
	type result struct {
		set unix.Sigset_t
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		var r result
		if r.err = blockAsyncSignals(); r.err == nil {
			r.err = unix.PthreadSigmask(unix.SIG_BLOCK, nil, &r.set)
		}
		ch <- r
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	has := func(s unix.Signal) bool { i := int(s) - 1; return r.set.Val[i/64]>>(i%64)&1 == 1 }
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("checks the 64-bit sigset layout")
	}
	for _, s := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGURG, unix.SIGCHLD, unix.SIGPIPE} {
		if !has(s) {
			t.Errorf("%v not blocked", s)
		}
	}
	for _, s := range []unix.Signal{unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE} {
		if has(s) {
			t.Errorf("synchronous %v blocked", s)
		}
	}
}

func TestSigdel(t *testing.T) {
	w32 := []uint32{^uint32(0), ^uint32(0)}
	sigdel(w32, 33)
	sigdel(w32, 1)
	if w32[0] != ^uint32(1) || w32[1] != ^uint32(1) {
		t.Errorf("uint32 words: %#x", w32)
	}
	w64 := []uint64{^uint64(0)}
	sigdel(w64, 64)
	if w64[0] != ^uint64(0)>>1 {
		t.Errorf("uint64 words: %#x", w64)
	}
}

func FuzzParseNetlink(f *testing.F) {
	req := encodeConnect(0x1a, 1, &connectParams{size: 1 << 20, blockSize: 512, fds: []int{3}})
	f.Add(nlError(req, 0, ""))
	f.Add(nlError(req, unix.EINVAL, "msg"))
	f.Add(req)
	f.Add(encodeGetFamily(1, "nbd"))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := parseMessages(b)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if m.typ == unix.NLMSG_ERROR {
				parseAck(m)
			}
			if len(m.data) >= unix.GENL_HDRLEN {
				parseAttrs(m.data[unix.GENL_HDRLEN:])
			}
		}
	})
}
