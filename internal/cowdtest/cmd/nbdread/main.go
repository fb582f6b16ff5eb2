// Command nbdread copies a range of an NBD export to stdout, through the
// test client of package cowdtest (independent of cowd/nbd). It is built
// for the QEMU dom0 of internal/xentest, which has no NBD client tools, to
// compare what the kernel's /dev/nbdN shows with what the socket serves:
//
//	nbdread -socket /run/cowd/vm.sock [-export vm] [-offset N] [-length N] | sha256sum
//
// A length of 0 reads to the end of the export; -size prints the export
// size instead.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/xentmem/xentmem/internal/cowdtest"
)

func main() {
	sock := flag.String("socket", "", "unix socket `PATH` of the server")
	export := flag.String("export", "", "export `NAME` (default: the server's default export)")
	off := flag.Int64("offset", 0, "first byte")
	length := flag.Int64("length", 0, "bytes to read (0: to the end)")
	size := flag.Bool("size", false, "print the export size and exit")
	flag.Parse()
	if err := run(*sock, *export, *off, *length, *size); err != nil {
		fmt.Fprintln(os.Stderr, "nbdread:", err)
		os.Exit(1)
	}
}

func run(sock, export string, off, length int64, size bool) error {
	if sock == "" {
		return fmt.Errorf("-socket is required")
	}
	c, err := cowdtest.Dial("unix", sock, &cowdtest.DialOptions{Export: export})
	if err != nil {
		return err
	}
	defer c.Close()
	if size {
		fmt.Println(c.Size)
		return nil
	}
	if length == 0 {
		length = c.Size - off
	}
	if off < 0 || length < 0 || off+length > c.Size {
		return fmt.Errorf("range %d+%d outside the export (%d bytes)", off, length, c.Size)
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	buf := make([]byte, 1<<20)
	for length > 0 {
		p := buf[:min(int64(len(buf)), length)]
		if err := c.Read(p, off); err != nil {
			return fmt.Errorf("read %d@%d: %w", len(p), off, err)
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		off += int64(len(p))
		length -= int64(len(p))
	}
	return w.Flush()
}
