package xenctl

import (
	"encoding/binary"
	"fmt"
)

// UUID is a tmem shared-pool identifier: the two 64-bit words Xen keeps as
// uuid[0] ("lo") and uuid[1] ("hi") in struct tmem_op u.creat and in struct
// xen_tmem_pool_info (xen-tmem-abi.md §3.7).
type UUID struct {
	Lo uint64 // uuid[0]
	Hi uint64 // uuid[1]
}

// ParseUUID parses text the way xl tmem-shared-auth does (libxc
// xc_tmem_uuid_parse, xen-tmem-abi.md §9.1): "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
// with the dashes at positions 8, 13, 18 and 23; the first 16 hex digits,
// read as one big-endian number, become Hi (uuid[1]) and the last 16 become
// Lo (uuid[0]). Hex letters may be upper or lower case and are decoded
// correctly (xl up to 4.8 decoded a–f as 0–5; 4.9 fixed that). Like xl, a
// string of exactly one hex digit is also accepted and becomes Hi.
//
// Errors wrap [ErrBadInput].
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) == 1 {
		d, ok := hexDigit(s[0])
		if !ok {
			return UUID{}, fmt.Errorf("%w: tmem uuid %q: want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", ErrBadInput, s)
		}
		return UUID{Hi: uint64(d)}, nil
	}
	if len(s) != 36 {
		return UUID{}, fmt.Errorf("%w: tmem uuid %q: want 36 characters xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", ErrBadInput, s)
	}
	x := &u.Hi
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return UUID{}, fmt.Errorf("%w: tmem uuid %q: want '-' at position %d", ErrBadInput, s, i)
			}
			if i == 18 {
				x = &u.Lo
			}
			continue
		}
		d, ok := hexDigit(s[i])
		if !ok {
			return UUID{}, fmt.Errorf("%w: tmem uuid %q: %q at position %d is not a hex digit", ErrBadInput, s, s[i], i)
		}
		*x = *x<<4 | uint64(d)
	}
	return u, nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String returns the xl text form, lower case: Hi as the first 16 hex
// digits (8-4-4), Lo as the last 16 (4-12). ParseUUID(u.String()) == u.
func (u UUID) String() string { return string(u.appendText(make([]byte, 0, 36))) }

func (u UUID) appendText(b []byte) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < 32; i++ { // hex digit i of Hi‖Lo, most significant first
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b = append(b, '-')
		}
		w := u.Hi
		if i >= 16 {
			w = u.Lo
		}
		b = append(b, hex[w>>(60-4*uint(i%16))&0xF])
	}
	return b
}

// MarshalText implements encoding.TextMarshaler with [UUID.String].
func (u UUID) MarshalText() ([]byte, error) { return u.appendText(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler with [ParseUUID].
func (u *UUID) UnmarshalText(b []byte) error {
	v, err := ParseUUID(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// IsZero reports whether both words are zero (what Xen reports for private
// pools).
func (u UUID) IsZero() bool { return u == UUID{} }

// GuestUUID returns the words a Linux guest derives from a 16-byte
// filesystem uuid for a shared cleancache pool: the first 8 bytes loaded as
// a little-endian u64 become Lo, the last 8 Hi (Linux drivers/xen/tmem.c,
// xen-tmem-abi.md §11). This differs from how xl parses uuid text, so use it
// to authorise such a pool from dom0.
func GuestUUID(fs [16]byte) UUID {
	return UUID{Lo: binary.LittleEndian.Uint64(fs[:8]), Hi: binary.LittleEndian.Uint64(fs[8:])}
}
