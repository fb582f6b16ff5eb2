package qcow2

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "regenerate testdata/fuzz from images made by qemu-img and qemu-io")

// TestUpdateCorpus regenerates the seed corpus of the fuzz targets from
// real images: go test ./cowd/qcow2 -run TestUpdateCorpus -update-corpus.
func TestUpdateCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to regenerate testdata/fuzz")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "base.raw"), randomBytes(4*mib, 1))
	src := filepath.Join(dir, "src.raw")
	b := randomBytes(4*mib, 2)
	for i := 0; i < len(b); i += 2 {
		b[i] = 0
	}
	writeFile(t, src, b)
	secret := []string{"--object", "secret,id=sec0,data=123456"}
	images := []struct {
		name   string
		create []string
		io     []string
	}{
		{"v3-backing", []string{"-o", "cluster_size=4k", "-b", "base.raw", "-F", "raw"}, nil},
		{"v3-written", []string{"-o", "cluster_size=4k", "-b", "base.raw", "-F", "raw"},
			[]string{"write -P 1 0 10k", "write -z 16k 8k", "write -z -u 40k 4k", "discard 4k 4k"}},
		{"v2", []string{"-o", "compat=0.10,cluster_size=4k", "-b", "base.raw", "-F", "raw"}, []string{"write -P 2 0 12k"}},
		{"extended-l2", []string{"-o", "extended_l2=on,cluster_size=16k", "-b", "base.raw", "-F", "raw"},
			[]string{"write -P 3 1k 2k", "write -z 20k 3k", "write -P 4 40k 30k"}},
		{"lazy", []string{"-o", "lazy_refcounts=on,cluster_size=4k"}, []string{"write 0 8k"}},
		{"refcount-1", []string{"-o", "refcount_bits=1,cluster_size=4k"}, []string{"write 0 8k"}},
		{"refcount-64", []string{"-o", "refcount_bits=64,cluster_size=4k"}, []string{"write 0 8k"}},
		{"luks", append(secret, "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"), nil},
		{"data-file", []string{"-o", "data_file=" + filepath.Join(dir, "data.raw")}, nil},
		{"zstd", []string{"-o", "compression_type=zstd"}, nil},
	}
	for _, im := range images {
		img := filepath.Join(dir, im.name+".qcow2")
		mustTool(t, "qemu-img", append(append([]string{"create", "-q", "-f", "qcow2"}, im.create...), img, "4M")...)
		for _, c := range im.io {
			mustTool(t, "qemu-io", "-f", "qcow2", "-c", c, img)
		}
		seedImage(t, im.name, img)
	}
	comp := filepath.Join(dir, "compressed.qcow2")
	mustTool(t, "qemu-img", "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4k", src, comp)
	seedImage(t, "compressed", comp)
	compExt := filepath.Join(dir, "compressed-ext.qcow2")
	mustTool(t, "qemu-img", "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=16k,extended_l2=on", src, compExt)
	seedImage(t, "compressed-extended-l2", compExt)
	snap := filepath.Join(dir, "snap.qcow2")
	mustTool(t, "qemu-img", "create", "-q", "-f", "qcow2", snap, "4M")
	mustTool(t, "qemu-img", "snapshot", "-c", "s1", snap)
	mustTool(t, "qemu-img", "bitmap", "--add", snap, "b0")
	seedImage(t, "snapshot-bitmap", snap)
}

// seedImage writes corpus entries cut from one image: the header area, the
// start of the L1 table, of the first L2 table and of the first refcount
// block.
func seedImage(t *testing.T, name, img string) {
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(b)
	if err != nil {
		t.Logf("%s: %v (header seed only)", name, err)
	}
	writeSeed(t, "FuzzHeader", name, fmt.Sprintf("[]byte(%q)", b[:min(len(b), 1024)]))
	if err != nil {
		return
	}
	g := newGeometry(&h)
	size := int64(len(b))
	l1 := int64(h.L1TableOffset)
	if l1+8 <= size {
		writeSeed(t, "FuzzL1", name+"-l1", fmt.Sprintf("[]byte(%q)\nuint8(%d)\nint64(%d)",
			b[l1:min(size, l1+64)], g.clusterBits-minClusterBits, size))
		if l2 := int64(binary.BigEndian.Uint64(b[l1:]) & offsetMask); l2 != 0 && l2 < size {
			writeSeed(t, "FuzzL2", name, fmt.Sprintf("[]byte(%q)\nuint8(%d)\nbool(%t)\nbool(%t)\nint64(%d)",
				b[l2:min(size, l2+512)], g.clusterBits-minClusterBits, g.extL2, g.v3, size))
		}
	}
	rt := int64(h.RefcountTableOffset)
	writeSeed(t, "FuzzL1", name+"-reftable", fmt.Sprintf("[]byte(%q)\nuint8(%d)\nint64(%d)",
		b[rt:min(size, rt+32)], g.clusterBits-minClusterBits, size))
	if rb := int64(binary.BigEndian.Uint64(b[rt:]) & refTableMask); rb != 0 && rb < size {
		writeSeed(t, "FuzzRefcount", name, fmt.Sprintf("[]byte(%q)\nuint8(%d)\nuint16(%d)\nuint64(%d)",
			b[rb:min(size, rb+64)], h.RefcountOrder, 5, 1))
	}
}

func writeSeed(t *testing.T, target, name, values string) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := "go test fuzz v1\n" + values + "\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
