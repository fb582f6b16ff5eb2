#!/bin/sh
# xen-qemu.sh: boot Debian's real Xen 4.17 with a Debian 6.1 PV dom0 under
# QEMU (TCG, no KVM). Facts: /work/shared/reference/real-xen.md §1.
#
#   xen-qemu.sh prepare CACHE_DIR
#       Installs the host tools when root (otherwise prints the apt-get
#       command and exits 2), downloads and unpacks (never installs) Xen and
#       the dom0 kernel into CACHE_DIR, keyed on their package versions, and
#       writes CACHE_DIR/manifest.env. Idempotent; exits 3 when the packages
#       cannot be downloaded.
#   xen-qemu.sh boot CACHE_DIR INITRD SERIAL_LOG
#       Boots Xen + dom0 with INITRD as the dom0 initramfs; all console output
#       (Xen on com1, dom0's hvc0 through Xen) goes to SERIAL_LOG. Environment:
#       XEN_QEMU_MEM (MiB, 2048), XEN_QEMU_TIMEOUT (s, 300), XEN_QEMU_SMP (1),
#       XEN_EXTRA_ARGS, DOM0_MEM (512M), DOM0_EXTRA_ARGS.
#       QEMU's exit status says nothing about the guest: grep SERIAL_LOG.
set -eu

TOOLS_PKGS="qemu-system-x86 busybox-static cpio"
XEN_PKG=xen-hypervisor-4.17-amd64

die() { code=$1; shift; echo "xen-qemu.sh: $*" >&2; exit "$code"; }

missing_tools() {
	missing=""
	command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
	if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing busybox-static"
	fi
	command -v cpio >/dev/null 2>&1 || missing="$missing cpio"
	echo "$missing"
}

need_tools() {
	for t in apt-get apt-cache dpkg-deb dpkg-query flock zcat timeout; do
		command -v "$t" >/dev/null 2>&1 || die 2 "$t not found (a Debian host with apt is required)"
	done
	m=$(missing_tools)
	[ -z "$m" ] && return 0
	cmd="apt-get install -y --no-install-recommends $TOOLS_PKGS"
	if [ "$(id -u)" -ne 0 ]; then
		die 2 "missing packages:$m; run as root: apt-get update && $cmd"
	fi
	echo "xen-qemu.sh: installing$m" >&2
	DEBIAN_FRONTEND=noninteractive $cmd >&2 ||
		die 2 "'$cmd' failed (no network or stale lists? try apt-get update)"
	m=$(missing_tools)
	[ -z "$m" ] || die 2 "still missing after install:$m"
}

# download PKG=VER into the current directory; as root, without apt's
# _apt sandbox, which cannot write to our private temporary directory.
download() {
	if [ "$(id -u)" -eq 0 ]; then
		apt-get download -o APT::Sandbox::User=root "$1" >&2
	else
		apt-get download "$1" >&2
	fi
}

safe() { echo "$1" | sed 's/[^A-Za-z0-9.+-]/_/g'; }

# candidate PKG: the version apt would download, empty if unknown.
candidate() {
	apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2; exit }'
}

prepare() {
	cache=$1
	need_tools
	mkdir -p "$cache"
	cache=$(cd "$cache" && pwd)
	exec 9>"$cache/.lock"
	flock 9 # concurrent test binaries share the cache
	rm -rf "$cache"/.dl.* # left by an interrupted run

	# One apt-cache call (~1 s): the candidate records of Xen and of the
	# kernel meta-package, which depends on "linux-image-ABI (= VERSION)".
	# shellcheck disable=SC2046 # word splitting wanted: three fields
	set -- $(apt-cache show --no-all-versions "$XEN_PKG" linux-image-amd64 2>/dev/null | awk '
		/^Package: / { pkg = $2 }
		/^Version: / && pkg == "'"$XEN_PKG"'" { xver = $2 }
		/^Depends: / && pkg == "linux-image-amd64" {
			if (match($0, /linux-image-[0-9][^ ,]*( \(= [^)]*\))?/)) {
				n = split(substr($0, RSTART, RLENGTH), f, /[ ()=]+/)
				kpkg = f[1]; kver = f[2]
			}
		}
		END { print (xver == "" ? "-" : xver), (kpkg == "" ? "-" : kpkg), (kver == "" ? "-" : kver) }')
	xver=${1#-} kpkg=${2#-} kver=${3#-}
	[ -n "$kpkg" ] && [ -z "$kver" ] && kver=$(candidate "$kpkg")
	if [ -z "$xver" ] || [ -z "$kver" ]; then
		if [ -s "$cache/manifest.env" ]; then
			echo "xen-qemu.sh: apt knows no versions (run apt-get update); reusing $cache/manifest.env" >&2
			exit 0
		fi
		die 3 "apt-cache cannot resolve $XEN_PKG / linux-image-amd64; run: apt-get update"
	fi

	xdir="$cache/xen_$(safe "$xver")"
	kdir="$cache/${kpkg}_$(safe "$kver")"
	krel=${kpkg#linux-image-}

	if [ ! -s "$xdir/xen" ]; then
		tmp=$(mktemp -d "$cache/.dl.XXXXXX")
		(cd "$tmp" && download "$XEN_PKG=$xver") ||
			{ rm -rf "$tmp"; die 3 "apt-get download $XEN_PKG=$xver failed (network?)"; }
		dpkg-deb -x "$tmp"/*.deb "$tmp/x"
		# QEMU's multiboot loader cannot gunzip.
		zcat "$tmp/x/boot/xen-4.17-amd64.gz" >"$tmp/xen"
		rm -rf "$xdir"
		mkdir -p "$xdir"
		mv "$tmp/xen" "$xdir/xen"
		rm -rf "$tmp"
	fi
	if [ ! -s "$kdir/vmlinuz" ]; then
		tmp=$(mktemp -d "$cache/.dl.XXXXXX")
		(cd "$tmp" && download "$kpkg=$kver") ||
			{ rm -rf "$tmp"; die 3 "apt-get download $kpkg=$kver failed (network?)"; }
		dpkg-deb -x "$tmp"/*.deb "$tmp/x"
		m="lib/modules/$krel"
		rm -rf "$kdir"
		mkdir -p "$kdir/$m/kernel/drivers"
		# Keep only what the tests load; the whole module tree is ~400 MB.
		for d in drivers/xen drivers/block; do
			cp -a "$tmp/x/$m/kernel/$d" "$kdir/$m/kernel/drivers/"
		done
		cp "$tmp/x/$m/modules.order" "$tmp/x/$m/modules.builtin" "$kdir/$m/"
		cp "$tmp/x/boot/config-$krel" "$kdir/config"
		mv "$tmp/x/boot/vmlinuz-$krel" "$kdir/vmlinuz"
		rm -rf "$tmp"
	fi
	# Drop other versions left by earlier runs.
	for d in "$cache"/xen_* "$cache"/linux-image-*; do
		[ -e "$d" ] || continue
		[ "$d" = "$xdir" ] || [ "$d" = "$kdir" ] || rm -rf "$d"
	done

	mods="$kdir/lib/modules/$krel/kernel/drivers"
	cat >"$cache/manifest.env.tmp" <<EOF
XEN='$xdir/xen'
XEN_PKG_VERSION='$xver'
VMLINUZ='$kdir/vmlinuz'
KERNEL_PKG='$kpkg'
KERNEL_PKG_VERSION='$kver'
KVER='$krel'
MODULES_DIR='$kdir/lib/modules/$krel'
PRIVCMD_KO='$mods/xen/xen-privcmd.ko'
NBD_KO='$mods/block/nbd.ko'
BUSYBOX='/bin/busybox'
QEMU='$(command -v qemu-system-x86_64)'
EOF
	mv "$cache/manifest.env.tmp" "$cache/manifest.env"
	cat "$cache/manifest.env"
}

boot() {
	cache=$1 initrd=$2 log=$3
	[ -s "$cache/manifest.env" ] || die 2 "no $cache/manifest.env; run: $0 prepare $cache"
	# shellcheck source=/dev/null
	. "$cache/manifest.env"
	# Multiboot module 1 is the dom0 kernel plus its command line, module 2
	# the initramfs; a literal comma is written ",,".
	dom0args="console=hvc0 earlyprintk=xen${DOM0_EXTRA_ARGS:+ $DOM0_EXTRA_ARGS}"
	xenargs="console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all"
	# The SMAP pitfall: dom0 crashes at once in Xen's bounce-frame code
	# under emulation unless SMAP is off in Xen (smap=0) and QEMU (-smap).
	xenargs="$xenargs dom0_mem=${DOM0_MEM:-512M},max:${DOM0_MEM:-512M} smap=0${XEN_EXTRA_ARGS:+ $XEN_EXTRA_ARGS}"
	exec timeout -k 10 "${XEN_QEMU_TIMEOUT:-300}" qemu-system-x86_64 \
		-machine pc -accel tcg -cpu max,-smap -smp "${XEN_QEMU_SMP:-1}" \
		-m "${XEN_QEMU_MEM:-2048}" -display none -monitor none -no-reboot \
		-serial "file:$log" -kernel "$XEN" \
		-append "$xenargs" \
		-initrd "$(echo "$VMLINUZ $dom0args" | sed 's/,/,,/g'),$(echo "$initrd" | sed 's/,/,,/g')"
}

case "${1:-}" in
prepare) [ $# -eq 2 ] || die 2 "usage: $0 prepare CACHE_DIR"; prepare "$2" ;;
boot) [ $# -eq 4 ] || die 2 "usage: $0 boot CACHE_DIR INITRD SERIAL_LOG"; boot "$2" "$3" "$4" ;;
*) die 2 "usage: $0 prepare CACHE_DIR | boot CACHE_DIR INITRD SERIAL_LOG" ;;
esac
