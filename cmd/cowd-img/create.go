package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/xentmem/xentmem/cowd"
)

func cmdCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if isQcow2Create(args) {
		return cmdCreateQcow2(ctx, args, stdout, stderr) // create_qcow2.go
	}
	fs := newFlags("create", "IMAGE BASE [BLOCK_KB]", stderr)
	force := fs.Bool("f", false, "overwrite an existing IMAGE")
	if code := parse(fs, args, 2, 3); code >= 0 {
		return code
	}
	kb := cowd.DefaultBlockSize >> 10
	if fs.NArg() == 3 {
		n, err := strconv.Atoi(fs.Arg(2))
		if err != nil || n <= 0 {
			fmt.Fprintf(stderr, "cowd-img: block size %q: want a number of KiB\n", fs.Arg(2))
			return 2
		}
		kb = n
	}
	h, err := cowd.Create(fs.Arg(0), fs.Arg(1), &cowd.CreateOptions{BlockSize: kb << 10, Force: *force})
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "Formatting '%s', fmt=dscow size=%d base=%s block_size=%d\n",
		fs.Arg(0), h.Size, h.Base.Path, h.BlockSize)
	return 0
}
