package cowd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const kib = 1024

// op is one step of a scripted test against a Device and its expected
// content.
type op struct {
	kind        string // write, trim, zero, zero-nohole, zero-fast, sync
	off, length int64
	fill        byte
}

func apply(t *testing.T, d *Device, want []byte, o op) error {
	t.Helper()
	bs := d.bs
	switch o.kind {
	case "write":
		p := bytes.Repeat([]byte{o.fill}, int(o.length))
		if _, err := d.WriteAt(p, o.off); err != nil {
			return err
		}
		copy(want[o.off:], p)
	case "trim":
		if err := d.Trim(o.off, o.length); err != nil {
			return err
		}
		first, last := d.wholeBlocks(o.off, o.length)
		clear(want[min(first*bs, d.size):min(last*bs, d.size)])
	case "zero", "zero-nohole", "zero-fast":
		if err := d.WriteZeroes(o.off, o.length, o.kind == "zero-nohole", o.kind == "zero-fast"); err != nil {
			return err
		}
		clear(want[o.off : o.off+o.length])
	case "sync":
		return d.Sync()
	}
	return nil
}

func TestDeviceOps(t *testing.T) {
	const size = 1*1024*kib + 3000 // partial last block
	tests := []struct {
		name    string
		ops     []op
		wantErr error
		stats   Stats // Mapped and Zero only
	}{
		{name: "read through base"},
		{name: "partial write copies the block", ops: []op{{"write", 100, 10, 1}}, stats: Stats{Mapped: 1}},
		{name: "write across blocks", ops: []op{{"write", 60 * kib, 10 * kib, 2}}, stats: Stats{Mapped: 2}},
		{name: "whole block write", ops: []op{{"write", 128 * kib, 64 * kib, 3}}, stats: Stats{Mapped: 1}},
		{name: "partial last block", ops: []op{{"write", size - 10, 10, 4}}, stats: Stats{Mapped: 1}},
		{name: "rewrite", ops: []op{{"write", 0, 4 * kib, 5}, {"write", 2 * kib, 4 * kib, 6}}, stats: Stats{Mapped: 1}},
		{name: "trim whole blocks frees them", ops: []op{{"write", 0, 200 * kib, 7}, {"trim", 10 * kib, 190 * kib, 0}},
			stats: Stats{Mapped: 2, Zero: 2}},
		{name: "trim to the end covers the partial block", ops: []op{{"trim", size - 3000 - 64*kib, 64*kib + 3000, 0}},
			stats: Stats{Zero: 2}},
		{name: "zero partial and whole", ops: []op{{"zero", 1000, 200 * kib, 0}}, stats: Stats{Mapped: 2, Zero: 2}},
		{name: "zero no hole allocates", ops: []op{{"zero-nohole", 0, 128 * kib, 0}}, stats: Stats{Mapped: 2}},
		{name: "fast zero of whole blocks", ops: []op{{"zero-fast", 64 * kib, 128 * kib, 0}}, stats: Stats{Zero: 2}},
		{name: "fast zero needing writes is refused", ops: []op{{"zero-fast", 1, 128 * kib, 0}}, wantErr: errors.ErrUnsupported},
		{name: "write after zero", ops: []op{{"zero", 0, 64 * kib, 0}, {"write", 10, 10, 8}}, stats: Stats{Mapped: 1}},
		{name: "write past the end", ops: []op{{"write", size - 1, 2, 9}}, wantErr: ErrRange},
		{name: "trim past the end", ops: []op{{"trim", size, 1, 0}}, wantErr: ErrRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, base := newImage(t, size, 64*kib)
			d := openDevice(t, img, nil)
			want := bytes.Clone(base)
			var err error
			for _, o := range tt.ops {
				if err = apply(t, d, want, o); err != nil {
					break
				}
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				want = base // a refused request changes nothing
			}
			if !bytes.Equal(readAll(t, d), want) {
				t.Fatal("content differs from the expected image")
			}
			st := d.Stats()
			if diff := cmp.Diff(tt.stats, Stats{Mapped: st.Mapped, Zero: st.Zero}); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			checkClean(t, img)
			d = openDevice(t, img, nil)
			defer d.Close()
			if !bytes.Equal(readAll(t, d), want) {
				t.Fatal("content after reopen differs")
			}
		})
	}
}

func TestCrashKeepsSyncedWrites(t *testing.T) {
	for _, syncMode := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "sync"}[syncMode], func(t *testing.T) {
			img, base := newImage(t, 512*kib, 4*kib)
			d := openDevice(t, img, &Options{Sync: syncMode})
			want := bytes.Clone(base)
			for i, o := range []op{{"write", 0, 10 * kib, 1}, {"trim", 16 * kib, 16 * kib, 0}, {"zero", 40 * kib, 3 * kib, 0}} {
				if err := apply(t, d, want, o); err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
			}
			if err := d.Sync(); err != nil {
				t.Fatal(err)
			}
			durable := bytes.Clone(want)
			late := []op{{"write", 100 * kib, 20 * kib, 2}, {"trim", 0, 8 * kib, 0}}
			for _, o := range late {
				if err := apply(t, d, want, o); err != nil {
					t.Fatal(err)
				}
			}
			d.abandon()
			checkClean(t, img)
			d = openDevice(t, img, nil)
			defer d.Close()
			got := readAll(t, d)
			if syncMode {
				if !bytes.Equal(got, want) {
					t.Fatal("sync mode lost a completed write")
				}
				return
			}
			for i := range got {
				if got[i] != durable[i] && got[i] != want[i] {
					t.Fatalf("byte %d = %#x, neither the synced %#x nor the later %#x", i, got[i], durable[i], want[i])
				}
			}
			if !bytes.Equal(got[:8*kib], durable[:8*kib]) && !bytes.Equal(got[:8*kib], want[:8*kib]) {
				t.Fatal("unsynced trim half applied within a block")
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, img string, basePath string)
		want  error
	}{
		{name: "base truncated", setup: func(t *testing.T, _, base string) {
			os.Chmod(base, 0o600)
			if err := os.Truncate(base, 1000); err != nil {
				t.Fatal(err)
			}
		}, want: ErrBaseShort},
		{name: "base rewritten", setup: func(t *testing.T, _, base string) {
			os.Chmod(base, 0o600)
			if err := os.WriteFile(base, make([]byte, 256*kib), 0o600); err != nil {
				t.Fatal(err)
			}
		}, want: ErrBaseChanged},
		{name: "image in use", setup: func(t *testing.T, img, _ string) {
			d := openDevice(t, img, nil)
			t.Cleanup(func() { d.Close() })
		}, want: ErrInUse},
		{name: "not an image", setup: func(t *testing.T, img, _ string) {
			if err := os.WriteFile(img, []byte("hello"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, want: ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, _ := newImage(t, 256*kib, 4*kib)
			d := openDevice(t, img, nil)
			basePath := d.Header().Base.Path
			d.Close()
			tt.setup(t, img, basePath)
			_, err := Open(img, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestInitAndCommit(t *testing.T) {
	img, base := newImage(t, 300*kib, 4*kib)
	d := openDevice(t, img, nil)
	want := bytes.Clone(base)
	for _, o := range []op{{"write", 5, 9000, 1}, {"zero", 100 * kib, 50 * kib, 0}, {"write", 300*kib - 1, 1, 2}} {
		if err := apply(t, d, want, o); err != nil {
			t.Fatal(err)
		}
	}
	basePath := d.Header().Base.Path
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	os.Chmod(basePath, 0o600)
	var last int64
	if err := Commit(context.Background(), img, func(done, total int64) { last = done }); err != nil {
		t.Fatal(err)
	}
	if last == 0 {
		t.Error("no progress reported")
	}
	got, err := os.ReadFile(basePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("base after commit differs from the overlay view")
	}
	checkClean(t, img)
	d = openDevice(t, img, nil)
	if st := d.Stats(); st.Mapped+st.Zero != 0 {
		t.Errorf("overlay not emptied by commit: %+v", st)
	}
	if !bytes.Equal(readAll(t, d), want) {
		t.Fatal("view after commit differs")
	}
	if _, err := d.WriteAt([]byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := Init(img, &InitOptions{BlockSize: 8 * kib}); err != nil {
		t.Fatal(err)
	}
	d = openDevice(t, img, &Options{BlockSize: 8 * kib})
	defer d.Close()
	if !bytes.Equal(readAll(t, d), want) || d.Stats().Mapped != 0 {
		t.Fatal("Init did not reset the overlay")
	}
}

func TestReload(t *testing.T) {
	img, base := newImage(t, 256*kib, 4*kib)
	d := openDevice(t, img, nil)
	defer d.Close()
	want := bytes.Clone(base)
	if err := apply(t, d, want, op{"write", 3, 20000, 1}); err != nil {
		t.Fatal(err)
	}
	st, err := d.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ReloadStats{Blocks: 64, Mapped: 5}, st); diff != "" {
		t.Errorf("reload (-want +got):\n%s", diff)
	}
	if !bytes.Equal(readAll(t, d), want) {
		t.Fatal("content after reload differs")
	}
}

func TestBlockStatus(t *testing.T) {
	img, _ := newImage(t, 256*kib, 4*kib)
	d := openDevice(t, img, nil)
	defer d.Close()
	if err := d.WriteZeroes(8*kib, 8*kib, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt([]byte{1}, 20*kib); err != nil {
		t.Fatal(err)
	}
	type ext struct {
		Run        int64
		Hole, Zero bool
	}
	var got []ext
	for off := int64(0); off < 32*kib; {
		run, hole, zero, err := d.BlockStatus(off, 32*kib-off)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ext{run, hole, zero})
		off += run
	}
	want := []ext{{8 * kib, false, false}, {8 * kib, true, true}, {16 * kib, false, false}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("extents (-want +got):\n%s", diff)
	}
}

func TestConcurrentWriters(t *testing.T) {
	img, _ := newImage(t, 1024*kib, 64*kib)
	d := openDevice(t, img, nil)
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			p := bytes.Repeat([]byte{byte(w + 1)}, 4*kib)
			for i := range 64 {
				// Each worker owns every 8th 4 KiB piece; pieces of one
				// 64 KiB block belong to different workers.
				off := int64(i*workers+w) * 4 * kib % (1024 * kib)
				if _, err := d.WriteAt(p, off); err != nil {
					t.Error(err)
					return
				}
				if i%16 == 0 {
					if err := d.Sync(); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	got := readAll(t, d)
	for i := range int64(256) {
		if want := byte(i%workers + 1); got[i*4*kib] != want {
			t.Fatalf("piece %d = %d, want %d", i, got[i*4*kib], want)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	checkClean(t, img)
}
