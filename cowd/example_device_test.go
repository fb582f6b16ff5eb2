package cowd_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/xentmem/xentmem/cowd"
)

// Example creates an overlay over a small base, writes through it and
// reads back, leaving the base untouched.
func Example() {
	dir, err := os.MkdirTemp("", "cowd-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	base := filepath.Join(dir, "golden.img")
	if err := os.WriteFile(base, make([]byte, 1<<20), 0o400); err != nil {
		log.Fatal(err)
	}
	img := filepath.Join(dir, "vm1.dscow")
	if _, err := cowd.Create(img, base, &cowd.CreateOptions{BlockSize: 64 << 10}); err != nil {
		log.Fatal(err)
	}
	d, err := cowd.Open(img, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := d.WriteAt([]byte("hello"), 70000); err != nil {
		log.Fatal(err)
	}
	if err := d.Sync(); err != nil { // NBD FLUSH
		log.Fatal(err)
	}
	p := make([]byte, 5)
	if _, err := d.ReadAt(p, 70000); err != nil {
		log.Fatal(err)
	}
	st := d.Stats()
	if err := d.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s; %d of %d blocks in the CoW store\n", p, st.Mapped, st.Blocks)
	// Output: hello; 1 of 16 blocks in the CoW store
}
