package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the protocol version this package speaks.
const Version = 1

// MaxLine bounds one request or reply line.
const MaxLine = 1 << 20

// Ops.
const (
	OpStatus     = "status"
	OpList       = "list"
	OpFreeze     = "freeze"
	OpThaw       = "thaw"
	OpDestroy    = "destroy"
	OpSet        = "set"
	OpFlush      = "flush"
	OpFreeable   = "freeable"
	OpSharedAuth = "shared-auth"
	OpPoolCreate = "pool-create"
	OpSave       = "save"
	OpRestore    = "restore"
	OpReserve    = "reserve"
	OpEvents     = "events"
	OpCowdList   = "cowd-list"   // reserved for cowd supervision
	OpCowdAttach = "cowd-attach" // reserved for cowd supervision
	OpCowdDetach = "cowd-detach" // reserved for cowd supervision
)

// Ops lists every op and whether it takes a domain ("" = no args).
var opArgs = map[string]func() any{
	OpStatus:     nil,
	OpList:       func() any { return &ListArgs{} },
	OpFreeze:     func() any { return &DomainArgs{} },
	OpThaw:       func() any { return &DomainArgs{} },
	OpDestroy:    func() any { return &DomainArgs{} },
	OpSet:        func() any { return &SetArgs{} },
	OpFlush:      func() any { return &FlushArgs{} },
	OpFreeable:   nil,
	OpSharedAuth: func() any { return &SharedAuthArgs{} },
	OpPoolCreate: func() any { return &PoolCreateArgs{} },
	OpSave:       func() any { return &SaveArgs{} },
	OpRestore:    func() any { return &SaveArgs{} },
	OpReserve:    func() any { return &ReserveArgs{} },
	OpEvents:     nil,
	OpCowdList:   nil,
	OpCowdAttach: func() any { return &CowdAttachArgs{} },
	OpCowdDetach: func() any { return &CowdDetachArgs{} },
}

// Request is one call.
type Request struct {
	V    int             `json:"v"`
	ID   uint64          `json:"id"`
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Reply answers one Request.
type Reply struct {
	V      int             `json:"v"`
	ID     uint64          `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// EventLine is one line of an events stream.
type EventLine struct {
	V     int   `json:"v"`
	Event Event `json:"event"`
}

// Event is something the daemon did or saw.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // e.g. "action", "domain", "tmem", "reserve"
	Domain  string    `json:"domain,omitempty"`
	Message string    `json:"message"`
	Fields  any       `json:"fields,omitempty"`
}

// Error codes.
const (
	CodeBadRequest  = "bad-request" // malformed request: nothing changed
	CodeUnknownOp   = "unknown-op"  // no such op
	CodeNoDomain    = "no-domain"   // the domain does not exist
	CodeUnsupported = "unsupported" // this Xen lacks the operation
	CodeFrozen      = "frozen"      // tmem client frozen
	CodeFailed      = "failed"      // the operation failed
	CodeTimeout     = "timeout"     // e.g. a reservation did not complete
	CodeDenied      = "denied"      // peer not allowed
	CodeUnavailable = "unavailable" // e.g. tmem not present on this Xen
)

// Error is an error reply.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrBadRequest is matched by every decoding failure.
var ErrBadRequest = errors.New("bad request")

// DomainArgs names one domain (name or id) or all of them.
type DomainArgs struct {
	Domain string `json:"domain,omitempty"`
	All    bool   `json:"all,omitempty"`
}

func (a *DomainArgs) validate() error {
	if a.All == (a.Domain != "") {
		return errors.New("want exactly one of domain and all")
	}
	return nil
}

// ListArgs selects what list returns.
type ListArgs struct {
	DomainArgs
	Long bool `json:"long,omitempty"`
}

func (a *ListArgs) validate() error {
	if a.Domain != "" && a.All {
		return errors.New("want at most one of domain and all")
	}
	return nil
}

// SetArgs changes a client's weight, cap or compression.
type SetArgs struct {
	DomainArgs
	Weight   *uint32 `json:"weight,omitempty"`
	Cap      *uint32 `json:"cap,omitempty"`
	Compress *bool   `json:"compress,omitempty"`
}

func (a *SetArgs) validate() error {
	if err := a.DomainArgs.validate(); err != nil {
		return err
	}
	if a.Weight == nil && a.Cap == nil && a.Compress == nil {
		return errors.New("nothing to set: give weight, cap or compress")
	}
	return nil
}

// FlushArgs asks tmem to release KiB of ephemeral memory (all clients).
type FlushArgs struct {
	KiB uint64 `json:"kib"`
}

func (a *FlushArgs) validate() error {
	if a.KiB > 1<<32-4 {
		return fmt.Errorf("kib %d too large (Xen takes a 32-bit KiB count)", a.KiB)
	}
	return nil
}

// SharedAuthArgs authorises (or revokes) a shared-pool uuid for a domain.
type SharedAuthArgs struct {
	DomainArgs
	UUID      string `json:"uuid"`
	Authorise bool   `json:"authorise"`
}

func (a *SharedAuthArgs) validate() error {
	if err := a.DomainArgs.validate(); err != nil {
		return err
	}
	if a.UUID == "" {
		return errors.New("uuid is required")
	}
	return nil
}

// PoolCreateArgs creates a pool for a domain (the restore path).
type PoolCreateArgs struct {
	Domain     string `json:"domain"`
	Persistent bool   `json:"persistent"`
	Shared     bool   `json:"shared,omitempty"`
	UUID       string `json:"uuid,omitempty"`
}

func (a *PoolCreateArgs) validate() error {
	if a.Domain == "" {
		return errors.New("domain is required")
	}
	if a.Shared && a.UUID == "" {
		return errors.New("a shared pool needs a uuid")
	}
	if a.Shared && a.Persistent {
		return errors.New("a pool cannot be both shared and persistent")
	}
	return nil
}

// SaveArgs saves or restores a domain's persistent pools to or from a file
// on the daemon's host.
type SaveArgs struct {
	Domain string `json:"domain"`
	File   string `json:"file"`
}

func (a *SaveArgs) validate() error {
	if a.Domain == "" || a.File == "" {
		return errors.New("domain and file are required")
	}
	return nil
}

// ReserveArgs asks the daemon to make MiB free for a domain about to start.
type ReserveArgs struct {
	MiB       uint64 `json:"mib"`
	Domain    string `json:"domain,omitempty"` // for the log only
	TimeoutMs int64  `json:"timeout_ms,omitempty"`
}

func (a *ReserveArgs) validate() error {
	if a.MiB == 0 || a.MiB > 1<<40 {
		return fmt.Errorf("mib %d out of range", a.MiB)
	}
	if a.TimeoutMs < 0 {
		return errors.New("timeout_ms is negative")
	}
	return nil
}

// CowdAttachArgs attaches a cowd-served disk (reserved; see the hooks issue).
type CowdAttachArgs struct {
	Domain    string `json:"domain"`
	Disk      string `json:"disk"`
	Base      string `json:"base"`
	CowFile   string `json:"cow_file"`
	Format    string `json:"format"` // dscow or qcow2
	NBDDevice string `json:"nbd_device,omitempty"`
}

func (a *CowdAttachArgs) validate() error {
	if a.Domain == "" || a.Disk == "" || a.CowFile == "" {
		return errors.New("domain, disk and cow_file are required")
	}
	if a.Format != "dscow" && a.Format != "qcow2" {
		return fmt.Errorf("format %q: want dscow or qcow2", a.Format)
	}
	return nil
}

// CowdDetachArgs detaches a cowd-served disk (reserved).
type CowdDetachArgs struct {
	Domain string `json:"domain"`
	Disk   string `json:"disk"`
}

func (a *CowdDetachArgs) validate() error {
	if a.Domain == "" || a.Disk == "" {
		return errors.New("domain and disk are required")
	}
	return nil
}

type validator interface{ validate() error }

// DecodeRequest parses one request line and its arguments. The returned
// args value is nil for ops without arguments, else a pointer to the op's
// Args type. Every failure wraps ErrBadRequest; the Request is returned as
// far as it was parsed so that the reply can carry its id.
func DecodeRequest(line []byte) (*Request, any, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return &req, nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return &req, nil, fmt.Errorf("%w: trailing data after the request", ErrBadRequest)
	}
	if req.V != Version {
		return &req, nil, fmt.Errorf("%w: protocol version %d, this daemon speaks %d", ErrBadRequest, req.V, Version)
	}
	mk, ok := opArgs[req.Op]
	if !ok {
		return &req, nil, fmt.Errorf("%w: unknown op %q", ErrBadRequest, req.Op)
	}
	if mk == nil {
		if len(req.Args) != 0 && string(req.Args) != "null" && string(req.Args) != "{}" {
			return &req, nil, fmt.Errorf("%w: op %q takes no arguments", ErrBadRequest, req.Op)
		}
		return &req, nil, nil
	}
	args := mk()
	if len(req.Args) == 0 {
		return &req, nil, fmt.Errorf("%w: op %q needs arguments", ErrBadRequest, req.Op)
	}
	ad := json.NewDecoder(bytes.NewReader(req.Args))
	ad.DisallowUnknownFields()
	if err := ad.Decode(args); err != nil {
		return &req, nil, fmt.Errorf("%w: op %q: %v", ErrBadRequest, req.Op, err)
	}
	if v, ok := args.(validator); ok {
		if err := v.validate(); err != nil {
			return &req, nil, fmt.Errorf("%w: op %q: %v", ErrBadRequest, req.Op, err)
		}
	}
	return &req, args, nil
}

// EncodeRequest builds one request line (with the trailing newline).
func EncodeRequest(id uint64, op string, args any) ([]byte, error) {
	req := Request{V: Version, ID: id, Op: op}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return nil, err
		}
		req.Args = b
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
