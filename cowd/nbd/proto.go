package nbd

// Wire constants of the NBD protocol (doc/proto.md of NetworkBlockDevice/nbd).
// All integers on the wire are big-endian.

const (
	magicInit        = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt         = 0x49484156454f5054 // "IHAVEOPT"
	magicOptReply    = 0x0003e889045565a9
	magicRequest     = 0x25609513
	magicSimpleReply = 0x67446698
	magicStructReply = 0x668e33ef
)

// Handshake flags (server) and client flags.
const (
	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	clientFixedNewstyle = 1 << 0
	clientNoZeroes      = 1 << 1
	clientKnownFlags    = clientFixedNewstyle | clientNoZeroes
)

// Options.
const (
	optExportName      = 1
	optAbort           = 2
	optList            = 3
	optStartTLS        = 5
	optInfo            = 6
	optGo              = 7
	optStructuredReply = 8
	optListMetaContext = 9
	optSetMetaContext  = 10
)

// Option reply types.
const (
	repAck          = 1
	repServer       = 2
	repInfo         = 3
	repMetaContext  = 4
	repErrBit       = 1 << 31
	repErrUnsup     = repErrBit + 1
	repErrPolicy    = repErrBit + 2
	repErrInvalid   = repErrBit + 3
	repErrUnknown   = repErrBit + 6
	repErrShutdown  = repErrBit + 7
	repErrBlockSize = repErrBit + 8
	repErrTooBig    = repErrBit + 9
)

// Info types.
const (
	infoExport      = 0
	infoName        = 1
	infoDescription = 2
	infoBlockSize   = 3
)

// Transmission flags.
const (
	tfHasFlags        = 1 << 0
	tfReadOnly        = 1 << 1
	tfSendFlush       = 1 << 2
	tfSendFUA         = 1 << 3
	tfSendTrim        = 1 << 5
	tfSendWriteZeroes = 1 << 6
	tfSendDF          = 1 << 7
	tfCanMultiConn    = 1 << 8
	tfSendCache       = 1 << 10
	tfSendFastZero    = 1 << 11
)

// Commands.
const (
	cmdRead        = 0
	cmdWrite       = 1
	cmdDisc        = 2
	cmdFlush       = 3
	cmdTrim        = 4
	cmdCache       = 5
	cmdWriteZeroes = 6
	cmdBlockStatus = 7
)

// Command flags.
const (
	cmdFlagFUA      = 1 << 0
	cmdFlagNoHole   = 1 << 1
	cmdFlagDF       = 1 << 2
	cmdFlagReqOne   = 1 << 3
	cmdFlagFastZero = 1 << 4
)

// Structured reply chunk types and flags.
const (
	replyFlagDone         = 1 << 0
	replyTypeNone         = 0
	replyTypeOffsetData   = 1
	replyTypeBlockStatus  = 5
	replyTypeError        = 1<<15 + 1
	replyTypeErrorOffset  = 1<<15 + 2
	stateHole             = 1 << 0
	stateZero             = 1 << 1
	metaBaseAllocation    = "base:allocation"
	metaBaseAllocationID  = 1
	maxBlockStatusExtents = 1024
)

// Sizes.
const (
	requestHeaderLen = 28
	optionHeaderLen  = 16
	maxOptionLen     = 64 << 10 // longer option data is abuse: disconnect
	maxStringLen     = 4096
	defaultMaxIO     = 32 << 20 // maximum READ/WRITE payload advertised
)
