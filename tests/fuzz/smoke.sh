# Fuzz smoke test: build the libFuzzer targets (clang) and run each for
# 20 s from the committed seeds and regression inputs; fails on any
# crash, leak, sanitizer report or violated property.
. "$TOP/tests/lib.sh"
need clang clang
make -s -C "$TOP" fuzz-smoke
