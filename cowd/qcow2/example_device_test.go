package qcow2_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/xentmem/xentmem/cowd/qcow2"
)

// Create an overlay over a raw base, write through it, and read back both
// the new data and the base's.
func Example() {
	dir, err := os.MkdirTemp("", "qcow2-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	base := make([]byte, 1<<20)
	copy(base[4096:], "golden")
	if err := os.WriteFile(filepath.Join(dir, "base.raw"), base, 0o644); err != nil {
		log.Fatal(err)
	}
	img := filepath.Join(dir, "vm.qcow2")
	if _, err := qcow2.Create(img, &qcow2.CreateOptions{BackingFile: "base.raw", BackingFormat: "raw"}); err != nil {
		log.Fatal(err)
	}
	d, err := qcow2.Open(img, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := d.WriteAt([]byte("guest"), 0); err != nil {
		log.Fatal(err)
	}
	p := make([]byte, 6)
	d.ReadAt(p[:5], 0)
	fmt.Printf("%s\n", p[:5])
	d.ReadAt(p, 4096)
	fmt.Printf("%s\n", p)
	fmt.Println("backing chain layers:", len(d.Backing()))
	if err := d.Close(); err != nil {
		log.Fatal(err)
	}
	im, err := qcow2.OpenImage(img, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer im.Close()
	r, err := im.Check(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("check exit code", r.ExitCode())
	// Output:
	// guest
	// golden
	// backing chain layers: 1
	// check exit code 0
}
