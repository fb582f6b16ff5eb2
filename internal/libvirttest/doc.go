// Package libvirttest starts a private libvirtd for tests.
//
// [Start] launches /usr/sbin/libvirtd with its own configuration, socket and
// log directory (a short directory from os.MkdirTemp, so the socket path fits
// the 108-byte limit) and an empty LIBVIRT_DRIVER_DIR, so no hypervisor,
// network or storage module loads. The test driver built into libvirt.so keeps
// working: clients reach it with the URI test:///default (all connections of
// one daemon share that state) or test:///ABS/PATH.xml (a fresh copy of the
// file on every connection).
//
// Every [Daemon] is independent, so tests that use it may call t.Parallel.
// The daemon is stopped by PID (SIGCONT, SIGTERM, then SIGKILL after a grace
// period) when the test ends; its directory is removed and, if the test
// failed, the tail of its log is printed. On Linux the daemon also gets
// SIGKILL as its parent-death signal, so a test binary killed by a timeout
// leaves no daemon behind (best effort: the signal follows the OS thread
// that started it). As root, libvirtd still creates the shared, harmless
// /run/libvirt/common/system.token; nothing else outside its directory.
//
// # Fault injection
//
// [Daemon.Kill] (SIGKILL, stale sockets stay behind), [Daemon.Stop] (SIGTERM,
// clean exit), [Daemon.Restart] (start again on the same socket path) and
// [Daemon.Pause]/[Daemon.Resume] (SIGSTOP/SIGCONT: a hung daemon whose
// listening socket still accepts connections) reproduce the failures a
// libvirt client must survive.
//
// # Missing libvirtd
//
// When libvirtd is not installed, Start skips the test and names the apt-get
// command that installs it. When the environment variable CI is "true", a
// missing libvirtd fails the test instead: CI must not skip silently.
//
// Methods that can fail call t.Fatal, so call them from the test goroutine.
package libvirttest
