# Usage: --help of every command goes to stdout with exit 0; usage errors
# print a short usage to stderr and exit 2; --version works.
. "$TOP/tests/lib.sh"

for cmd in create info check convert map merge set-parent; do
	"$VHDTOOL" $cmd --help > out 2> err || fail "$cmd --help exited $?"
	grep -q "usage: vhdtool $cmd" out || fail "$cmd --help: no usage on stdout"
	[ ! -s err ] || fail "$cmd --help wrote to stderr"
	# A usage error is one line saying what is wrong, then a pointer to
	# --help (issue 14).
	expect_exit 2 "$VHDTOOL" $cmd --no-such-option x y 2> err
	grep -q "^vhdtool: $cmd: unknown option '--no-such-option'$" err || fail "$cmd: bad option not named: $(cat err)"
	[ "$(wc -l < err)" -eq 2 ] || fail "$cmd: usage error is not two lines: $(cat err)"
	[ "$(sed -n 2p err)" = "Try 'vhdtool $cmd --help' for more information." ] || fail "$cmd: no --help pointer"
	expect_exit 2 "$VHDTOOL" $cmd 2> err
	grep -q "^vhdtool: $cmd: missing" err || fail "$cmd without arguments: $(cat err)"
	[ "$(wc -l < err)" -eq 2 ] || fail "$cmd: not two lines: $(cat err)"
	expect_exit 2 "$VHDTOOL" $cmd a b c d 2>err
	[ "$(wc -l < err)" -eq 2 ] || fail "$cmd: not two lines: $(cat err)"
done
"$VHDTOOL" --help | grep -q convert || fail "--help lists no commands"
"$VHDTOOL" help convert | grep -q "usage: vhdtool convert" || fail "help CMD"
expect_exit 2 "$VHDTOOL" 2>err
[ "$(wc -l < err)" -eq 2 ] || fail "no command: not two lines: $(cat err)"
expect_exit 2 "$VHDTOOL" frobnicate 2>err
grep -q "unknown command 'frobnicate'" err || fail "unknown command not named"
[ "$(wc -l < err)" -eq 2 ] || fail "unknown command: not two lines: $(cat err)"
# --progress: the help and the error list every value.
for cmd in convert merge resize compact; do
	"$VHDTOOL" $cmd --help | grep -q -- "--progress\[=never|auto|always\]" ||
		fail "$cmd --help: --progress values"
	expect_exit 2 "$VHDTOOL" $cmd --progress=sometimes a b 2>err
	grep -q "never, auto or always" err || fail "$cmd: bad --progress: $(cat err)"
done
# create -b 0 is refused, not taken as the default.
expect_exit 2 "$VHDTOOL" create -b 0 zero.vhd 8M 2>err
grep -q "block size 0" err || fail "create -b 0: $(cat err)"
expect_exit 2 "$VHDTOOL" convert -b 0 a b 2>/dev/null
"$VHDTOOL" --version | grep -Eq '^vhdtool [0-9]+\.[0-9]+' || fail "--version"
expect_exit 2 "$VHDTOOL" convert --to qcow2 a b 2>/dev/null
expect_exit 2 "$VHDTOOL" convert --to raw --type fixed a b 2>/dev/null
expect_exit 2 "$VHDTOOL" create --block-size abc x.vhd 1M 2>/dev/null
expect_exit 2 "$VHDTOOL" create --parent p.vhd x.vhd 1M 2>/dev/null
expect_exit 2 "$VHDTOOL" info --parent 2>/dev/null
left=$(ls | grep -vx -e out -e err || true)
[ -z "$left" ] || fail "usage errors created files: $left"
echo ok
