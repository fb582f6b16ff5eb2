package nbd

import "io"

// Device is what an export serves. ReadAt and WriteAt must be safe for
// concurrent use (the server runs several requests at once); Sync makes
// every write completed before it durable.
type Device interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// The optional interfaces below add commands; the server advertises a
// command only when the Device implements it.

// Trimmer discards a range (NBD_CMD_TRIM); its content is undefined
// afterwards.
type Trimmer interface {
	Trim(off, length int64) error
}

// Zeroer makes a range read as zeroes (NBD_CMD_WRITE_ZEROES). With noHole
// the range must stay allocated. With fast set, a request that would not be
// faster than writing zeroes must fail at once, unchanged, with an error
// that maps to ENOTSUP (for example one wrapping errors.ErrUnsupported).
type Zeroer interface {
	WriteZeroes(off, length int64, noHole, fast bool) error
}

// BlockStatuser reports allocation for the base:allocation metadata
// context. It returns the length of the run starting at off (at least 1,
// at most length) and whether that run is a hole and reads as zeroes.
// Without it every range is reported as allocated data.
type BlockStatuser interface {
	BlockStatus(off, length int64) (run int64, hole, zero bool, err error)
}

// Cacher prefetches a range (NBD_CMD_CACHE). Without it CACHE succeeds
// and does nothing.
type Cacher interface {
	Cache(off, length int64) error
}

// BlockSizes are the constraints sent as NBD_INFO_BLOCK_SIZE.
type BlockSizes struct {
	Min       uint32 // offsets and lengths must be multiples; power of two, 1 to 64 KiB
	Preferred uint32 // power of two, >= max(Min, 512)
	Max       uint32 // largest READ/WRITE payload
}

// Export is one named device offered by a [Server].
type Export struct {
	Name        string
	Description string
	Device      Device
	Size        int64
	ReadOnly    bool
	// MultiConn advertises NBD_FLAG_CAN_MULTI_CONN. Set it only if all
	// connections share one Device whose Sync covers writes completed on
	// any of them.
	MultiConn bool
	// BlockSize; zero values mean 1, 4096 and 32 MiB.
	BlockSize BlockSizes
}

func (e *Export) sizes() BlockSizes {
	b := e.BlockSize
	if b.Min == 0 {
		b.Min = 1
	}
	if b.Preferred == 0 {
		b.Preferred = max(4096, b.Min)
	}
	if b.Max == 0 {
		b.Max = defaultMaxIO
	}
	return b
}

// flags returns the transmission flags of the export for a session.
func (e *Export) flags(structured bool) uint16 {
	f := uint16(tfHasFlags | tfSendFlush | tfSendFUA | tfSendCache)
	if e.ReadOnly {
		f |= tfReadOnly
	}
	if _, ok := e.Device.(Trimmer); ok && !e.ReadOnly {
		f |= tfSendTrim
	}
	if _, ok := e.Device.(Zeroer); ok && !e.ReadOnly {
		f |= tfSendWriteZeroes | tfSendFastZero
	}
	if structured {
		f |= tfSendDF
	}
	if e.MultiConn {
		f |= tfCanMultiConn
	}
	return f
}
