#!/bin/sh
# make fresh-check: prove README's promise on a machine that has nothing.
#
# Builds a Debian 12 minimal root (debootstrap --variant=minbase bookworm,
# then only `apt-get install make`) from the Debian mirror the host's apt
# already uses, and caches it as a tarball (FRESH_CACHE, default
# /var/cache/libvhd-fresh).  Each run unpacks a new copy, binds /dev,
# /dev/pts, /proc and /sys into it (FUSE needs /dev/fuse, the tests need
# loop devices), puts a clean `git clone` of this repository's HEAD there
# with ../shared beside it, and runs, as root:
#
#   make           without the build packages: must say what to install
#   make demo      must pass the first time
#   make check     must pass the first time
#   make deb       the Debian packages, judged by lintian
#
# Then a SECOND copy of the fresh root gets only the built packages
# (apt-get install ./*.deb) and runs the demo with the installed tools, and
# compiles and runs a small program with `pkg-config --cflags --libs libvhd`.
#
#   FRESH_STEPS="demo check deb installed"   what to run (default: all)
#   FRESH_KEEP=1                             keep the roots for a look
#   FRESH_REBUILD=1                          debootstrap anew, not the cache
#   FRESH_TESTS=PATTERN                      make check runs only these
#                                            (TESTS of tests/run.sh)
#   FRESH_DEBS=DIR                           "installed" takes the packages
#                                            from DIR, not from "deb"
#
# Needs root (debootstrap, chroot, mounts).  Installs debootstrap on the
# host when it is missing.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${FRESH_CACHE:-/var/cache/libvhd-fresh}
steps=${FRESH_STEPS:-demo check deb installed}
shared=${FRESH_SHARED:-$top/../shared}
suite=bookworm

die() { echo "fresh-machine: $*" >&2; exit 1; }
log() { printf '%s fresh-machine: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mounts)"

host_apt() {   # install host packages when their command is missing
	miss=""
	for p in "$@"; do command -v "${p%%:*}" >/dev/null 2>&1 || miss="$miss ${p#*:}"; done
	[ -z "$miss" ] && return 0
	log "installing on the host:$miss"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $miss; } >/dev/null ||
		die "apt-get install$miss failed"
}
host_apt debootstrap:debootstrap git:git
git -C "$top" rev-parse --verify -q HEAD >/dev/null ||
	die "$top is not a git checkout (the fresh root gets a clean clone of HEAD)"

# The Debian mirror (and security mirror) the host's apt uses: deb822
# .sources stanzas and one-line .list entries whose suite is bookworm*.
apt_uris() {   # suite pattern -> URIs, first one first
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
			awk -v s="$1" '$1 == "deb" && $3 ~ "^" s "$" { print $2 }'
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v s="$1" '
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { if (ok && u != "") print u; ok = 0; u = ""; next }
			tolower($1) == "uris:" { u = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i ~ "^" s "$") ok = 1 }
			END { if (ok && u != "") print u }' "$f"
	done
}
mirror=${FRESH_MIRROR:-$(apt_uris "$suite" | head -1)}
security=${FRESH_SECURITY:-$(apt_uris "$suite-security" | head -1)}
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
log "mirror $mirror${security:+, security $security}"

tarball="$cache/$suite-minbase-make.tar.gz"
mkdir -p "$cache"
work=$(mktemp -d /var/tmp/libvhd-fresh.XXXXXX)
roots=""

# Unmounts everything below a root; refuses to delete a root that still has
# a mount inside (rm -rf through a bind of /dev or /sys would be a disaster).
release_root() {
	r=$1
	# processes started inside this root (a server a failed test left)
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$r" ] || continue
		kill -9 "${p#/proc/}" 2>/dev/null || true
	done
	for _ in 1 2 3; do
		m=$(awk -v r="$r" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r)
		[ -z "$m" ] && break
		for x in $m; do umount "$x" 2>/dev/null || umount -l "$x" 2>/dev/null || true; done
		sleep 1
	done
	if awk -v r="$r" 'index($2, r "/") == 1 { f = 1 } END { exit !f }' /proc/self/mounts; then
		echo "fresh-machine: $r still has mounts, left in place" >&2
		return 1
	fi
	rm -rf "$r"
}
cleanup() {
	for r in $roots; do
		if [ -n "${FRESH_KEEP:-}" ]; then
			echo "fresh-machine: kept $r (unmount below it before removing)"
		else
			release_root "$r" || true
		fi
	done
	[ -n "${FRESH_KEEP:-}" ] || { rm -f "$work"/*.log; rmdir "$work" 2>/dev/null; } || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sources_list() {   # what a Debian 12 installer writes, on the host's mirror
	echo "deb $mirror $suite main"
	echo "deb $mirror $suite-updates main"
	[ -z "$security" ] || echo "deb $security $suite-security main"
}

# 1. The cached root: minbase + make, nothing else.
[ -z "${FRESH_REBUILD:-}" ] || rm -f "$tarball"
if [ ! -s "$tarball" ]; then
	log "building the $suite minbase root (cached as $tarball)"
	r="$work/bootstrap"; roots="$roots $r"
	start=$(date +%s)
	debootstrap --variant=minbase "$suite" "$r" "$mirror" >"$work/debootstrap.log" 2>&1 || {
		tail -20 "$work/debootstrap.log"; die "debootstrap failed"; }
	sources_list > "$r/etc/apt/sources.list"
	cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
	chroot "$r" sh -c 'export DEBIAN_FRONTEND=noninteractive;
		apt-get update -qq && apt-get install -y -qq make && apt-get clean &&
		rm -rf /var/lib/apt/lists/*' >"$work/make.log" 2>&1 || {
		tail -20 "$work/make.log"; die "apt-get install make failed in the root"; }
	tar -C "$r" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
	release_root "$r"; roots=""
	log "root cached in $(( $(date +%s) - start ))s"
fi

new_root() {   # name: sets $root to a new fresh root with /dev, /proc, /sys
	# bound (not a $(...) subshell: $roots must reach the cleanup)
	r="$work/$1"; mkdir "$r"; roots="$roots $r"; root=$r
	tar -C "$r" -xzf "$tarball"
	cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
	# The root is a mount point itself, as / is on a booted machine
	# (unshare -m --propagation needs that: tests/cli/output_is_input).
	mount --bind "$r" "$r" && mount --make-private "$r"
	# private: nothing mounted below these in the root may show on the host
	mount --bind /dev "$r/dev" && mount --make-private "$r/dev"
	mount --bind /dev/pts "$r/dev/pts" && mount --make-private "$r/dev/pts"
	mount -t proc proc "$r/proc"
	mount --bind /sys "$r/sys" && mount --make-private "$r/sys"
	# /dev/shm, /run and /tmp as on a booted machine
	mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm" 2>/dev/null || true
	mount -t tmpfs -o mode=755 tmpfs "$r/run"
}
in_root() {   # root, shell command: a clean root login environment
	r=$1; shift
	chroot "$r" /usr/bin/env -i HOME=/root USER=root LOGNAME=root TERM=dumb \
		LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		/bin/sh -c "$*"
}
timed() {   # label, root, command: run it in the root, tee its output,
	    # note the time; the command's status comes back through /root/.rc
	label=$1; r=$2; shift 2
	log "$label: $*"
	start=$(date +%s)
	rm -f "$r/root/.rc"
	# in the background and waited for, so INT/TERM reach the trap (which
	# stops what runs in the roots) at once
	in_root "$r" "( $* ); echo \$? > /root/.rc" 2>&1 | tee "$work/$(echo "$label" | tr ' ' _).log" &
	wait $!
	rc=$(cat "$r/root/.rc" 2>/dev/null || echo 1)
	secs=$(( $(date +%s) - start ))
	times="$times
  $label: $(( secs / 60 ))m$(( secs % 60 ))s (exit $rc)"
	log "$label finished in ${secs}s, exit $rc"
	[ "$rc" -eq 0 ] || { failed="$failed [$label]"; return 1; }
}
times=""; failed=""
report() {
	echo
	echo "fresh-machine timings:$times"
	if [ -z "$failed" ]; then echo "fresh-machine: all passed"; else echo "fresh-machine: FAILED:$failed"; fi
	# End with make check's verdict: its per-test lines and closing count.
	if [ -f "$work/make_check.log" ]; then
		echo
		echo "make check in the fresh root:"
		sed -n '/^\(PASS\|FAIL\) /,$p' "$work/make_check.log" |
			grep -E '^(PASS |FAIL |    \||failed:|[0-9]+ passed, [0-9]+ failed)'
	fi
	[ -z "$failed" ]
}

# 2. A clean clone of HEAD with ../shared beside it; demo, check, deb.
new_root build; r=$root
log "clean clone of $(git -C "$top" rev-parse --short HEAD) into $r/root/src/libvhd"
mkdir -p "$r/root/src"
git clone -q --no-checkout "$top" "$r/root/src/libvhd"
git -C "$r/root/src/libvhd" checkout -q --detach "$(git -C "$top" rev-parse HEAD)"
rm -rf "$r/root/src/libvhd/.git"   # the root has no git; nothing needs it
if [ -d "$shared" ]; then
	cp -a "$(cd "$shared" && pwd -P)/." "$r/root/src/shared/"
else
	echo "fresh-machine: no $shared: tests of other software's images cannot run" >&2
fi
src=/root/src/libvhd
# Azurite (npm, not Debian) for the Azure tests: tests/azurite.sh installs
# it with npm when missing, but the npm registry may not be reachable from
# the fresh root as it is from the host (a proxy the host alone trusts), so
# the host's cache is seeded into the root when there is one.
# A new host has no cache yet: it is filled here with the host's npm (the
# version tests/azurite.sh pins), so the root never depends on what an
# earlier test run on this host left behind.
az=${AZURITE_CACHE:-/var/cache/libvhd-azurite}
azv=$(sed -n 's/^AZURITE_VERSION=//p' "$top/tests/azurite.sh")
if ! grep -q "\"version\": \"$azv\"" "$az/node_modules/azurite/package.json" \
	2>/dev/null && command -v npm >/dev/null 2>&1; then
	mkdir -p "$az"
	npm install --prefix "$az" --no-audit --no-fund --loglevel=error \
		"azurite@$azv" >/dev/null 2>&1 ||
		echo "fresh-machine: npm install azurite@$azv on the host failed" >&2
fi
if [ -x "$az/node_modules/.bin/azurite-blob" ]; then
	mkdir -p "$r/var/cache"
	cp -a "$az" "$r/var/cache/libvhd-azurite"
	log "seeded Azurite from $az"
fi
for s in $steps; do
	case $s in
	demo)  # plain `make` before anything is installed: a list, not a compiler error
		timed "make without deps" "$r" "cd $src && ! make >/root/make0.log 2>&1 &&
			cat /root/make0.log && grep -q 'make deps' /root/make0.log &&
			! grep -q 'error:' /root/make0.log" || true ;;
	esac
	case $s in
	demo)  timed "make demo" "$r" "cd $src && make demo" || true ;;
	check) timed "make check" "$r" "cd $src && TESTS='${FRESH_TESTS:-}' make check" || true ;;
	deb)   timed "make deb" "$r" "cd $src && make deb" || true ;;
	esac
done

# 3. The built packages alone, in a second fresh root.
case " $steps " in *" installed "*)
	debs=$(ls ${FRESH_DEBS:-"$r"/root/src}/*.deb 2>/dev/null | grep -v -- -dbgsym_ || true)
	if [ -z "$debs" ]; then
		failed="$failed installed(no .deb built)"
	else
		new_root installed; r2=$root
		mkdir -p "$r2/root/debs"
		cp $debs "$r2/root/debs/"
		cp "$top/scripts/installed-check.sh" "$r2/root/installed-check.sh"
		timed "installed packages" "$r2" "sh /root/installed-check.sh /root/debs" || true
	fi
;; esac

report
