# Usage: --help of every command goes to stdout with exit 0; usage errors
# print a short usage to stderr and exit 2; --version works.
. "$TOP/tests/lib.sh"

for cmd in create info check convert map merge set-parent; do
	"$VHDTOOL" $cmd --help > out 2> err || fail "$cmd --help exited $?"
	grep -q "usage: vhdtool $cmd" out || fail "$cmd --help: no usage on stdout"
	[ ! -s err ] || fail "$cmd --help wrote to stderr"
	expect_exit 2 "$VHDTOOL" $cmd --no-such-option x y 2> err
	grep -q "usage: vhdtool $cmd" err || fail "$cmd: no usage on stderr"
	grep -q "no-such-option" err || fail "$cmd: bad option not named"
	expect_exit 2 "$VHDTOOL" $cmd 2> err
	grep -q "usage:" err || fail "$cmd without arguments: no usage"
	expect_exit 2 "$VHDTOOL" $cmd a b c d 2>/dev/null
done
"$VHDTOOL" --help | grep -q convert || fail "--help lists no commands"
"$VHDTOOL" help convert | grep -q "usage: vhdtool convert" || fail "help CMD"
expect_exit 2 "$VHDTOOL" 2>/dev/null
expect_exit 2 "$VHDTOOL" frobnicate 2>err
grep -q "unknown command 'frobnicate'" err || fail "unknown command not named"
"$VHDTOOL" --version | grep -Eq '^vhdtool [0-9]+\.[0-9]+' || fail "--version"
expect_exit 2 "$VHDTOOL" convert --to qcow2 a b 2>/dev/null
expect_exit 2 "$VHDTOOL" convert --to raw --type fixed a b 2>/dev/null
expect_exit 2 "$VHDTOOL" create --block-size abc x.vhd 1M 2>/dev/null
expect_exit 2 "$VHDTOOL" create --parent p.vhd x.vhd 1M 2>/dev/null
expect_exit 2 "$VHDTOOL" info --parent 2>/dev/null
left=$(ls | grep -vx -e out -e err || true)
[ -z "$left" ] || fail "usage errors created files: $left"
echo ok
