package pools

import (
	"fmt"
	"strconv"
)

// AllClients is the tmem client id meaning "every client" (TMEM_CLI_ID_NULL,
// 0xFFFF). It is not a Xen domain id. FLUSH only accepts this id.
const AllClients uint16 = 0xFFFF

// ActionKind is what an [Action] asks the daemon to do.
type ActionKind uint8

const (
	// ActionFlush asks Xen to evict KiB of ephemeral memory (FLUSH with
	// the all-clients id; Xen has no per-client flush).
	ActionFlush ActionKind = iota + 1
	// ActionSetWeight sets a client's weight to Weight.
	ActionSetWeight
	// ActionFreeze freezes a client, or every client: no new pages.
	ActionFreeze
	// ActionThaw thaws a client, or every client.
	ActionThaw
	// ActionSetCompress turns a client's compression on or off.
	ActionSetCompress
)

// String returns the kind in lowercase: "flush", "set-weight", "freeze",
// "thaw" or "set-compress".
func (k ActionKind) String() string {
	switch k {
	case ActionFlush:
		return "flush"
	case ActionSetWeight:
		return "set-weight"
	case ActionFreeze:
		return "freeze"
	case ActionThaw:
		return "thaw"
	case ActionSetCompress:
		return "set-compress"
	}
	return "ActionKind(" + strconv.Itoa(int(k)) + ")"
}

// Action is one thing the policy or a reservation wants done, in the order
// returned. The daemon executes it, or only logs it when DryRun is set.
type Action struct {
	Kind ActionKind
	// DomID is the client, or AllClients.
	DomID uint16
	// Name is the client's name for messages; empty for AllClients.
	Name string
	// KiB is the memory to flush (ActionFlush).
	KiB uint64
	// Weight is the new weight (ActionSetWeight).
	Weight uint32
	// Compress is the new compression flag (ActionSetCompress).
	Compress bool
	// Reason says why, in words an administrator can check against the
	// snapshot.
	Reason string
	// DryRun marks an action that must not be executed, only reported.
	DryRun bool
}

// String describes the action, for example
// "flush 90112 KiB from all clients: free 40 MiB below …" or, in dry-run
// mode, "would freeze dom7 (batch): …".
func (a Action) String() string {
	var b []byte
	if a.DryRun {
		b = append(b, "would "...)
	}
	b = append(b, a.Kind.String()...)
	switch a.Kind {
	case ActionFlush:
		b = fmt.Appendf(b, " %d KiB from ", a.KiB)
		b = a.appendTarget(b)
	case ActionSetWeight:
		b = append(b, ' ')
		b = a.appendTarget(b)
		b = fmt.Appendf(b, " to %d", a.Weight)
	case ActionSetCompress:
		b = append(b, ' ')
		b = a.appendTarget(b)
		if a.Compress {
			b = append(b, " on"...)
		} else {
			b = append(b, " off"...)
		}
	default:
		b = append(b, ' ')
		b = a.appendTarget(b)
	}
	if a.Reason != "" {
		b = append(b, ": "...)
		b = append(b, a.Reason...)
	}
	return string(b)
}

func (a Action) appendTarget(b []byte) []byte {
	if a.DomID == AllClients {
		return append(b, "all clients"...)
	}
	b = append(b, "dom"...)
	b = strconv.AppendUint(b, uint64(a.DomID), 10)
	if a.Name != "" && a.Name != "dom"+strconv.Itoa(int(a.DomID)) {
		b = append(b, " ("...)
		b = append(b, a.Name...)
		b = append(b, ')')
	}
	return b
}

// mib formats KiB as MiB with one decimal for reasons.
func mib(kib uint64) string {
	return strconv.FormatFloat(float64(kib)/1024, 'f', 1, 64) + " MiB"
}

// roundUpMiB rounds kib up to a whole MiB, the granularity Xen reports
// freeable memory in.
func roundUpMiB(kib uint64) uint64 {
	return (kib + 1023) / 1024 * 1024
}
