# Images made by other software (Windows, qemu, blktap) mount read-only
# with the contents expected.tsv records, unchanged; damaged ones and a
# child without its parent are refused without mounting.
. "$TOP/tests/fuse/fuselib"
shared_fixtures || fail "shared fixtures missing: SHARED_FIXTURES=${SHARED_FIXTURES:-}"

cp "$SHARED_FIXTURES"/*.vhd "$SHARED_FIXTURES"/*.img .
touch mnt
n=0
while IFS="$(printf '\t')" read -r file _ type size sum expect _; do
	case "$file" in '#'*|'') continue ;; esac
	before=$(sha "$file")
	case "$expect" in
	ok)
		fmount --read-only "$file" mnt
		[ "$(stat -c %s mnt)" -eq "$size" ] || fail "$file: size $(stat -c %s mnt), expected $size"
		[ "$sum" = - ] || [ "$(sha mnt)" = "$sum" ] || fail "$file: contents differ"
		funmount mnt
		n=$((n + 1)) ;;
	damaged|parent-missing)
		set +e; "$VHDFUSE" --read-only "$file" mnt 2>err; rc=$?; set -e
		not_mounted mnt
		[ "$rc" -ne 0 ] || fail "$file ($expect) was mounted"
		grep -q "^vhdfuse: .*$file" err || fail "$file: message: $(cat err)" ;;
	esac
	[ "$(sha "$file")" = "$before" ] || fail "$file changed"
done < "$SHARED_FIXTURES/expected.tsv"
[ "$n" -ge 10 ] || fail "only $n fixtures mounted"
# the Windows fixed disk carries an MBR: its partition shows as p1
mkdir d
fmount --read-only win10-fixed.vhd d
[ -f d/p1 ] || fail "win10-fixed.vhd: no p1 ($(ls d))"
funmount d
