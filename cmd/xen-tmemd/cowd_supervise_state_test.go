package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"

	"github.com/xentmem/xentmem/internal/control"
)

func TestCowdName(t *testing.T) {
	long := strings.Repeat("a", 80)
	tests := []struct {
		name, domain, disk, want string
	}{
		{name: "plain", domain: "web1", disk: "xvda", want: "web1-xvda"},
		{name: "dots and underscores", domain: "db_2.prod", disk: "xvdb", want: "db_2.prod-xvdb"},
		{name: "space", domain: "my vm", disk: "xvda", want: "my_vm-xvda-"},
		{name: "leading dash", domain: "-x", disk: "xvda", want: "dx-xvda-"},
		{name: "long", domain: long, disk: "xvda", want: strings.Repeat("a", 55) + "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cowdName(tt.domain, tt.disk)
			if !strings.HasPrefix(got, tt.want) || len(got) > cowdNameMax || !cowdNameOK.MatchString(got) {
				t.Errorf("cowdName(%q, %q) = %q, want prefix %q, at most %d bytes", tt.domain, tt.disk, got, tt.want, cowdNameMax)
			}
			if got == tt.want && strings.HasSuffix(tt.want, "-") {
				t.Errorf("no hash suffix: %q", got)
			}
		})
	}
	if cowdName("my vm", "xvda") == cowdName("my_vm", "xvda") {
		t.Error("cleaned names collide")
	}
}

func cowdValidRecord() cowdRecord {
	spec := cowdSpec{Domain: "web1", Disk: "xvda", Name: "web1-xvda", Format: "dscow",
		CowFile: "/var/lib/xen/cow/web1.dscow", Base: "/var/lib/xen/images/golden.img", NBDDevice: "/dev/nbd0"}
	return cowdRecord{Version: 1, Spec: spec, Binary: "/usr/local/sbin/cowd",
		Args:    cowdArgs(spec, "/run/cowd/xen-tmemd/web1-xvda.sock", "/run/cowd/xen-tmemd/web1-xvda.pid"),
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestDecodeCowdRecord(t *testing.T) {
	good := cowdValidRecord()
	tests := []struct {
		name    string
		edit    func(r *cowdRecord)
		raw     string
		wantErr bool
	}{
		{name: "valid", edit: func(*cowdRecord) {}},
		{name: "version", edit: func(r *cowdRecord) { r.Version = 2 }, wantErr: true},
		{name: "no domain", edit: func(r *cowdRecord) { r.Spec.Domain = "" }, wantErr: true},
		{name: "bad name", edit: func(r *cowdRecord) { r.Spec.Name = "../x" }, wantErr: true},
		{name: "format", edit: func(r *cowdRecord) { r.Spec.Format = "vhd" }, wantErr: true},
		{name: "relative cow", edit: func(r *cowdRecord) { r.Spec.CowFile = "x.dscow" }, wantErr: true},
		{name: "nbd", edit: func(r *cowdRecord) { r.Spec.NBDDevice = "/dev/sda" }, wantErr: true},
		{name: "args do not end in NAME COWFILE", edit: func(r *cowdRecord) { r.Args = r.Args[:len(r.Args)-1] }, wantErr: true},
		{name: "unknown field", raw: `{"version":1,"extra":1}`, wantErr: true},
		{name: "trailing data", raw: `{"version":1} {}`, wantErr: true},
		{name: "not json", raw: `pid=3`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(tt.raw)
			r := good
			r.Args = append([]string(nil), good.Args...)
			if tt.raw == "" {
				tt.edit(&r)
				var err error
				if b, err = json.Marshal(r); err != nil {
					t.Fatal(err)
				}
			}
			got, err := decodeCowdRecord(b)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, errCowdRecord) {
					t.Errorf("error %v does not wrap errCowdRecord", err)
				}
				return
			}
			if diff := cmp.Diff(&r, got); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzDecodeCowdRecord(f *testing.F) {
	b, _ := json.Marshal(cowdValidRecord())
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeCowdRecord(b)
		if err != nil {
			return
		}
		// A record that decodes encodes and decodes to the same record.
		b2, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeCowdRecord(b2)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Errorf("round trip (-first +second):\n%s", diff)
		}
	})
}

func TestFreeNBD(t *testing.T) {
	sys := t.TempDir()
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(sys, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &cowdSupervisor{cfg: CowdConfig{SysRoot: sys}, atts: map[cowdKey]*cowdAttachment{}}
	if _, err := s.freeNBD(); err == nil {
		t.Error("freeNBD without /sys/block: no error")
	}
	mk("block/sda")
	if _, err := s.freeNBD(); err == nil || !strings.Contains(err.Error(), "modprobe nbd") {
		t.Errorf("freeNBD without nbd devices: %v", err)
	}
	for _, d := range []string{"nbd0", "nbd1", "nbd2", "nbd10"} {
		mk("block/" + d)
	}
	mk("block/nbd0/pid") // connected by someone else
	s.atts[cowdKey{"a", "b"}] = &cowdAttachment{spec: cowdSpec{NBDDevice: "/dev/nbd1"}}
	if dev, err := s.freeNBD(); err != nil || dev != "/dev/nbd2" {
		t.Errorf("freeNBD = %q, %v; want /dev/nbd2", dev, err)
	}
	mk("block/nbd2/pid")
	mk("block/nbd10/pid")
	if _, err := s.freeNBD(); err == nil || !strings.Contains(err.Error(), "all 4 NBD devices are in use") {
		t.Errorf("freeNBD with all used: %v", err)
	}
}

func TestCowdConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *CowdConfig)
		want string // "" = valid
	}{
		{name: "defaults", edit: func(*CowdConfig) {}},
		{name: "relative state dir", edit: func(c *CowdConfig) { c.StateDir = "run" }, want: "state_dir"},
		{name: "long state dir", edit: func(c *CowdConfig) { c.StateDir = "/" + strings.Repeat("x", 100) }, want: "too long"},
		{name: "relative binary", edit: func(c *CowdConfig) { c.Binary = "cowd" }, want: "binary"},
		{name: "no link dir", edit: func(c *CowdConfig) { c.LinkDir = "" }},
		{name: "backoff", edit: func(c *CowdConfig) { c.BackoffMax = duration{time.Millisecond} }, want: "backoff"},
		{name: "max failures", edit: func(c *CowdConfig) { c.MaxFailures = 0 }, want: "max_failures"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultCowdConfig()
			tt.edit(&c)
			err := c.validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, errConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("validate = %v, want a configuration error about %s", err, tt.want)
			}
		})
	}
	if s, err := newCowdSupervisor(CowdConfig{Disable: true}, zaptest.NewLogger(t), nil); s != nil || err != nil {
		t.Errorf("disabled: %v, %v", s, err)
	}
}

func TestCowdSpecSameAs(t *testing.T) {
	s := cowdSpec{Format: "dscow", CowFile: "/c", Base: "/b", NBDDevice: "/dev/nbd3"}
	tests := []struct {
		name string
		o    cowdSpec
		want bool
	}{
		{name: "same", o: s, want: true},
		{name: "auto nbd", o: cowdSpec{Format: "dscow", CowFile: "/c", NBDDevice: nbdAuto}, want: true},
		{name: "other nbd", o: cowdSpec{Format: "dscow", CowFile: "/c", NBDDevice: "/dev/nbd4"}},
		{name: "other base", o: cowdSpec{Format: "dscow", CowFile: "/c", Base: "/x", NBDDevice: "/dev/nbd3"}},
		{name: "no nbd", o: cowdSpec{Format: "dscow", CowFile: "/c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.sameAs(tt.o); got != tt.want {
				t.Errorf("sameAs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCowdNewSpec(t *testing.T) {
	s := &cowdSupervisor{}
	_, err := s.newSpec(&control.CowdAttachArgs{Domain: "a/b", Disk: "xvda", CowFile: "/c", Format: "dscow"})
	if err == nil {
		t.Error("domain with a slash accepted")
	}
}
