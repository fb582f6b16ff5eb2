package xenctl

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseUUID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want UUID
		err  bool
	}{
		// The first 16 hex digits are uuid[1] (Hi), the last 16 uuid[0] (Lo).
		{in: "00112233-4455-6677-8899-aabbccddeeff", want: UUID{Hi: 0x0011223344556677, Lo: 0x8899aabbccddeeff}},
		{in: "00112233-4455-6677-8899-AABBCCDDEEFF", want: UUID{Hi: 0x0011223344556677, Lo: 0x8899aabbccddeeff}},
		{in: "ffffffff-ffff-ffff-ffff-ffffffffffff", want: UUID{Hi: ^uint64(0), Lo: ^uint64(0)}},
		{in: "00000000-0000-0000-0000-000000000001", want: UUID{Lo: 1}},
		{in: "7", want: UUID{Hi: 7}}, // xl accepts one character
		{in: "a", want: UUID{Hi: 10}},
		{in: "", err: true},
		{in: "-", err: true},
		{in: "g", err: true},
		{in: "00112233-4455-6677-8899-aabbccddeef", err: true},
		{in: "00112233-4455-6677-8899-aabbccddeeff0", err: true},
		{in: "00112233x4455-6677-8899-aabbccddeeff", err: true},
		{in: "00112233-4455-6677-8899-aabbccddeefg", err: true},
		{in: "0011223344556677-8899-aabbccddeeff-00", err: true},
	} {
		got, err := ParseUUID(tc.in)
		if tc.err {
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("ParseUUID(%q) = %v, %v; want an error matching ErrBadInput", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseUUID(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
}

func TestUUIDString(t *testing.T) {
	u := UUID{Hi: 0x0011223344556677, Lo: 0x8899aabbccddeeff}
	if got, want := u.String(), "00112233-4455-6677-8899-aabbccddeeff"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	text, _ := u.MarshalText()
	var back UUID
	if err := back.UnmarshalText(text); err != nil || back != u {
		t.Errorf("text round trip: %v, %v", back, err)
	}
	if err := back.UnmarshalText([]byte("nope")); !errors.Is(err, ErrBadInput) {
		t.Errorf("UnmarshalText(nope): %v", err)
	}
	if !(UUID{}).IsZero() || u.IsZero() {
		t.Errorf("IsZero")
	}
}

func TestGuestUUID(t *testing.T) {
	fs := [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	want := UUID{Lo: 0x7766554433221100, Hi: 0xffeeddccbbaa9988}
	if diff := cmp.Diff(want, GuestUUID(fs)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func FuzzParseUUID(f *testing.F) {
	f.Add("00112233-4455-6677-8899-aabbccddeeff")
	f.Add("F")
	f.Add("00112233-4455-6677-8899-aabbccddee-f")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUUID(s)
		if err != nil {
			return
		}
		back, err := ParseUUID(u.String())
		if err != nil || back != u {
			t.Fatalf("ParseUUID(%q) = %v; its String %q parses to %v, %v", s, u, u.String(), back, err)
		}
	})
}
