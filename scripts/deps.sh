#!/bin/sh
# Installs the Debian packages that building, testing and the demo need.
# As root it runs apt-get; otherwise it prints the command and fails.
# Each entry: a command or file that must exist, and the package with it.
set -u
missing=""
have() { command -v "$1" >/dev/null 2>&1 || [ -e "$1" ]; }
while read -r probe pkg; do
	[ -n "$probe" ] || continue
	have "$probe" || missing="$missing $pkg"
done <<'LIST'
cc build-essential
make build-essential
pkg-config pkg-config
/usr/include/fuse3/fuse.h libfuse3-dev
fusermount3 fuse3
flock util-linux
setpriv util-linux
mountpoint util-linux
/usr/include/zlib.h zlib1g-dev
/usr/include/uuid/uuid.h uuid-dev
/usr/include/cmocka.h libcmocka-dev
curl-config libcurl4-gnutls-dev
/usr/include/nettle/hmac.h nettle-dev
node nodejs
npm npm
/usr/include/gnutls/gnutls.h libgnutls28-dev
psktool gnutls-bin
certtool gnutls-bin
qemu-img qemu-utils
qemu-io qemu-utils
qemu-nbd qemu-utils
qemu-storage-daemon qemu-system-common
nbdinfo libnbd-bin
nbdcopy libnbd-bin
nbdsh libnbd-bin
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
script bsdutils
/usr/bin/time time
openssl openssl
strace strace
python3 python3
clang clang
nbdkit nbdkit
abidiff abigail-tools
abidw abigail-tools
nm binutils
readelf binutils
LIST
[ -z "$missing" ] && exit 0
missing=$(echo "$missing" | tr ' ' '\n' | sort -u | tr '\n' ' ')
if [ "$(id -u)" -eq 0 ]; then
	echo "deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -qq && apt-get install -y -qq $missing; } >/tmp/libvhd-deps.log 2>&1 || {
		tail -20 /tmp/libvhd-deps.log; echo "deps: apt-get install failed" >&2; exit 1; }
	exit 0
fi
echo "deps: missing packages; run as root:" >&2
echo "  apt-get install -y$missing" >&2
exit 1
