package hypercall

// ioctl direction bits and field layout of Linux's _IOC (asm-generic/ioctl.h,
// x86): nr 8 bits, type 8 bits, size 14 bits, dir 2 bits.
const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2

	iocNRShift   = 0
	iocTypeShift = 8
	iocSizeShift = 16
	iocDirShift  = 30
)

// ioc computes an ioctl request number the way Linux's _IOC macro does.
func ioc(dir, typ, nr, size uintptr) uintptr {
	return dir<<iocDirShift | typ<<iocTypeShift | nr<<iocNRShift | size<<iocSizeShift
}

// IOCTL_PRIVCMD_HYPERCALL is _IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall)).
var IOCTL_PRIVCMD_HYPERCALL = ioc(iocNone, 'P', 0, 48)
