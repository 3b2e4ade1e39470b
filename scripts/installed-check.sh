#!/bin/sh
# Run by scripts/fresh-machine.sh inside a second fresh Debian root that
# has no build tree: installs the built packages (and the peer tools the
# demo calls), then
#   - runs the demo with the installed tools only,
#   - compiles and runs a program with `pkg-config --cflags --libs libvhd`
#     (shared library) and once against the static library,
#   - starts vhdnbd as vhdnbd.socket/vhdnbd.service would (socket passed
#     in LISTEN_FDS, images from /etc/default/vhdnbd) and reads the export.
#   sh installed-check.sh DIR-WITH-DEBS
set -eu
debs=$(cd "$1" && pwd)
fail() { echo "installed-check: FAIL: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }
export DEBIAN_FRONTEND=noninteractive
step "install the packages: $(cd "$debs" && echo *.deb)"
log=$(mktemp)
{ apt-get update -qq && apt-get install -y -qq "$debs"/*.deb \
	qemu-utils libnbd-bin file fuse3 gcc libc6-dev pkg-config systemd; } >"$log" 2>&1 ||
	{ tail -30 "$log"; fail "apt-get install of the packages failed"; }
dpkg -l 'libmsvhd*' vhdtools | grep '^ii'
for f in /usr/bin/vhdtool /usr/bin/vhdfuse /usr/bin/vhdnbd \
	/usr/share/man/man1/vhdtool.1.gz /usr/share/man/man1/vhdnbd.1.gz \
	/usr/share/man/man1/vhdfuse.1.gz /lib/systemd/system/vhdnbd.socket \
	/lib/systemd/system/vhdnbd.service /etc/default/vhdnbd; do
	[ -e "$f" ] || fail "$f not installed"
done
[ ! -e /root/src ] || fail "a build tree is present; this root must have none"

step "the demo, with the installed tools"
sh /usr/share/doc/vhdtools/examples/demo.sh --installed || fail "demo"

step "a program built with pkg-config --cflags --libs libvhd"
d=$(mktemp -d)
cd "$d"
cat > prog.c <<'C'
#include <vhd.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
	struct vhd_create_opts o = { .struct_size = sizeof o, .size = 64u << 20 };
	struct vhd *v;
	char in[4096], out[4096];
	if (argc != 2 || vhd_create(argv[1], &o) < 0 ||
	    vhd_open(&v, argv[1], VHD_OPEN_RDWR) < 0) {
		fprintf(stderr, "prog: %s\n", vhd_errmsg());
		return 1;
	}
	memset(in, 0x5a, sizeof in);
	if (vhd_pwrite(v, in, sizeof in, 1 << 20) < 0 ||
	    vhd_pread(v, out, sizeof out, 1 << 20) < 0 || memcmp(in, out, sizeof in)) {
		fprintf(stderr, "prog: write/read back failed: %s\n", vhd_errmsg());
		return 1;
	}
	vhd_close(v);
	printf("prog: libmsvhd %s: wrote and read back 4 KiB\n", vhd_version_string());
	return 0;
}
C
echo "pkg-config --cflags --libs libvhd: $(pkg-config --cflags --libs libvhd)"
gcc -Wall -Werror -o prog prog.c $(pkg-config --cflags --libs libvhd) || fail "compile against libmsvhd-dev"
ldd ./prog | grep -q 'libmsvhd\.so\.1 => /' || { ldd ./prog; fail "prog does not use the installed libmsvhd.so.1"; }
./prog a.vhd || fail "prog"
vhdtool check a.vhd || fail "vhdtool check of prog's image"
head -c 1048576 /dev/zero > r.raw
head -c 4096 /dev/zero | tr '\0' 'Z' >> r.raw
truncate -s 64M r.raw
qemu-img compare --image-opts "driver=raw,file.filename=r.raw" \
	"driver=vpc,force_size_calc=current_size,file.filename=a.vhd" ||
	fail "qemu-img does not read prog's image as written"
gcc -Wall -Werror -static -o prog-static prog.c $(pkg-config --static --cflags --libs libvhd) ||
	fail "static link against libmsvhd.a"
./prog-static b.vhd || fail "prog-static"

step "vhdnbd started as vhdnbd.socket and vhdnbd.service start it"
systemd-analyze verify --man=no /lib/systemd/system/vhdnbd.socket /lib/systemd/system/vhdnbd.service ||
	fail "systemd-analyze verify of the units"
sock=$(sed -n 's/^ListenStream=//p' /lib/systemd/system/vhdnbd.socket)
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/vhdnbd.service)
sed -i "s|^VHDNBD_IMAGES=.*|VHDNBD_IMAGES=\"$d/a.vhd\"|" /etc/default/vhdnbd
# What systemd does: read the EnvironmentFile, pass the listening socket.
( set -a; . /etc/default/vhdnbd; set +a
  eval "exec systemd-socket-activate -l $sock $exec_start" ) >nbd.log 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
nbdinfo "nbd+unix:///?socket=$sock" | tee info.out || { cat nbd.log; fail "nbdinfo"; }
grep -q 'export-size: 67108864' info.out || fail "export size is not 64 MiB"
nbdcopy "nbd+unix:///?socket=$sock" c.raw || fail "nbdcopy"
cmp c.raw r.raw || fail "the export's data differs from what prog wrote"
kill "$pid"; wait "$pid" 2>/dev/null || true
cd /; rm -rf "$d"
echo
echo "installed-check: passed"
