package xentest

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// writeInitramfs writes an uncompressed newc cpio archive with /init,
// busybox, /dev/console, the modules and cfg.Files. Writing the archive here
// rather than with cpio(1) lets a non-root user create the /dev/console
// node. It is not compressed: gzip costs seconds on the host (more under
// -race) and the emulated dom0 would spend longer inflating it than copying.
func writeInitramfs(dst string, m *Manifest, cfg BootConfig) error {
	files := map[string]string{"/bin/busybox": m.Busybox}
	for _, mod := range cfg.Modules {
		files["/lib/modules/"+filepath.Base(mod)] = mod
	}
	for g, h := range cfg.Files {
		files[path.Clean("/"+g)] = h
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := &cpioWriter{w: bw, dirs: map[string]bool{"/": true}}
	for _, d := range []string{"/proc", "/sys", "/tmp", "/dev"} {
		w.dir(d)
	}
	w.entry("/dev/console", 0o20600, 5, 1, nil, 0) // char 5,1: init's stdio
	init := renderInit(cfg)
	w.file("/init", 0o755, strings.NewReader(init), int64(len(init)))
	guest := make([]string, 0, len(files))
	for g := range files {
		guest = append(guest, g)
	}
	sort.Strings(guest)
	for _, g := range guest {
		if err := w.addHost(g, files[g]); err != nil {
			return err
		}
	}
	w.entry("TRAILER!!!", 0, 0, 0, nil, 0)
	if w.err != nil {
		return w.err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

type cpioWriter struct {
	w    io.Writer
	n    int64
	ino  int
	dirs map[string]bool
	err  error
}

// addHost adds host path h (a file, or a directory copied recursively) as g.
func (w *cpioWriter) addHost(g, h string) error {
	return filepath.WalkDir(h, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(h, p)
		gp := path.Join(g, filepath.ToSlash(rel))
		if d.IsDir() {
			w.dir(gp)
			return w.err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		mode := int64(0o644)
		if fi.Mode()&0o111 != 0 {
			mode = 0o755
		}
		r, err := os.Open(p)
		if err != nil {
			return err
		}
		defer r.Close()
		w.file(gp, mode, r, fi.Size())
		return w.err
	})
}

// dir adds directory p and its missing parents: the kernel's unpacker does
// not create parents.
func (w *cpioWriter) dir(p string) {
	if w.dirs[p] {
		return
	}
	w.dir(path.Dir(p))
	w.dirs[p] = true
	w.entry(p, 0o40755, 0, 0, nil, 0)
}

func (w *cpioWriter) file(p string, perm int64, r io.Reader, size int64) {
	w.dir(path.Dir(p))
	w.entry(p, 0o100000|perm, 0, 0, r, size)
}

// entry writes one newc header, the name and the data, each padded to 4.
func (w *cpioWriter) entry(name string, mode int64, rmaj, rmin int, r io.Reader, size int64) {
	if w.err != nil {
		return
	}
	name = strings.TrimPrefix(name, "/")
	w.ino++
	nlink := 1
	if mode&0o170000 == 0o40000 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, mode, 0, 0, nlink, 0, size, 0, 0, rmaj, rmin, len(name)+1, 0)
	w.write([]byte(hdr + name + "\x00"))
	w.pad()
	if r != nil {
		n, err := io.Copy(w.w, io.LimitReader(r, size))
		w.n += n
		if err == nil && n != size {
			err = fmt.Errorf("%s: size changed while copying", name)
		}
		if err != nil {
			w.err = err
		}
		w.pad()
	}
}

func (w *cpioWriter) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.n += int64(n)
	w.err = err
}

func (w *cpioWriter) pad() {
	if k := w.n % 4; k != 0 {
		w.write(make([]byte, 4-k))
	}
}
