package nbd_test

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/xentmem/xentmem/cowd/nbd"
)

// ExampleServer serves a file as an NBD export on a unix socket until
// SIGTERM; clients connect to nbd+unix:///disk?socket=/run/disk.sock.
func ExampleServer() {
	f, err := os.OpenFile("/var/lib/disk.raw", os.O_RDWR, 0)
	if err != nil {
		log.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	srv, err := nbd.NewServer(&nbd.Config{Exports: []nbd.Export{{Name: "disk", Device: f, Size: fi.Size()}}})
	if err != nil {
		log.Fatal(err)
	}
	l, err := nbd.Listen("unix:/run/disk.sock")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := srv.Serve(ctx, l); err != nil {
		log.Fatal(err)
	}
}
