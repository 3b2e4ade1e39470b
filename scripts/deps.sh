#!/bin/sh
# Installs the Debian packages that building, testing and the demo need.
# As root it runs apt-get; otherwise it prints the command and fails.
# Each entry: a command or file that must exist (a file may be a glob), and
# the package with it.  A line "[name]" starts a group:
#   [build]  what plain `make` needs
#   [test]   what `make check`, `make demo` and `make fuzz-smoke` need
#   [deb]    what `make deb` needs besides [build]
#
#   sh scripts/deps.sh              install [build] and [test]
#   sh scripts/deps.sh deb          install [build] and [deb]
#   sh scripts/deps.sh --check build   only say what is missing, install nothing
set -u
check_only=""
[ "${1:-}" = --check ] && { check_only=1; shift; }
groups="build ${*:-test}"   # [build] always
missing=""
have() {
	command -v "$1" >/dev/null 2>&1 && return 0
	for f in $1; do [ -e "$f" ] && return 0; done
	return 1
}
group=build
while read -r probe pkg; do
	case "$probe" in
	"") continue ;;
	\[*\]) group=${probe#[}; group=${group%]}; continue ;;
	esac
	case " $groups " in *" $group "*) ;; *) continue ;; esac
	have "$probe" || missing="$missing $pkg"
done <<'LIST'
[build]
cc build-essential
make build-essential
pkg-config pkg-config
/usr/include/fuse3/fuse.h libfuse3-dev
/usr/include/zlib.h zlib1g-dev
curl-config libcurl4-gnutls-dev
/usr/include/nettle/hmac.h nettle-dev
/usr/include/gnutls/gnutls.h libgnutls28-dev
[test]
/usr/include/uuid/uuid.h uuid-dev
/usr/include/cmocka.h libcmocka-dev
fusermount3 fuse3
flock util-linux
setpriv util-linux
node nodejs
npm npm
psktool gnutls-bin
certtool gnutls-bin
qemu-img qemu-utils
qemu-io qemu-utils
qemu-nbd qemu-utils
qemu-storage-daemon qemu-system-common
nbdinfo libnbd-bin
nbdcopy libnbd-bin
nbdsh libnbd-bin
file file
/usr/lib/python3/dist-packages/nbd.py python3-libnbd
vhdimount libvhdi-utils
vhdiinfo libvhdi-utils
7zz 7zip
losetup mount
fio fio
mkfs.ext4 e2fsprogs
e2fsck e2fsprogs
sfdisk fdisk
mkfs.xfs xfsprogs
mount mount
mountpoint util-linux
fallocate util-linux
script bsdutils
/usr/bin/time time
openssl openssl
strace strace
valgrind valgrind
gzip gzip
python3 python3
clang clang
/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a libclang-rt-14-dev
nbdkit nbdkit
abidiff abigail-tools
abidw abigail-tools
nm binutils
readelf binutils
[deb]
dpkg-buildpackage dpkg-dev
dh debhelper
lintian lintian
LIST
[ -z "$missing" ] && exit 0
missing=$(echo "$missing" | tr ' ' '\n' | sort -u | tr '\n' ' ')
if [ -n "$check_only" ]; then
	echo "missing Debian packages:$missing"
	exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
	echo "deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	log=$(mktemp "${TMPDIR:-/tmp}/libvhd-deps.XXXXXX")
	if apt-get update -qq >"$log" 2>&1 && apt-get install -y -qq $missing >>"$log" 2>&1; then
		rm -f "$log"
		exit 0
	fi
	tail -20 "$log"; echo "deps: apt-get install failed (log: $log)" >&2; exit 1
fi
echo "deps: missing packages; run as root:" >&2
echo "  apt-get install -y$missing" >&2
exit 1
