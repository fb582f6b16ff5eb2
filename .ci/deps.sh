#!/bin/sh
# deps.sh: install the Debian packages `make test` needs. As root it runs
# apt-get update once and installs what is missing; otherwise it prints the
# exact apt-get command and exits 2. Packages:
#   gcc, libxen-dev        layout tests against Xen 4.17's C headers
#   qemu-system-x86, busybox-static, cpio
#                          the real Xen 4.17 + dom0 boot (internal/xentest)
#   qemu-utils, libnbd-bin, fio, nbdkit
#                          cowd's interop tests (qemu-img, qemu-io, nbdinfo, nbdcopy, fio)
#   libvirt-daemon, libvirt-clients  a private libvirtd (test driver) for the daemon
#   tmux                   tmemctl tmem-top in a real terminal
set -eu

PKGS="gcc libxen-dev qemu-system-x86 busybox-static cpio qemu-utils libnbd-bin fio nbdkit libvirt-daemon libvirt-clients tmux"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "make test needs these Debian packages:$missing" >&2
	echo "run as root:  apt-get update && $cmd" >&2
	exit 2
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2
