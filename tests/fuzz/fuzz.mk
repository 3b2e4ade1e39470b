# Fuzzing (libFuzzer, clang): included by the top Makefile.
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="fuzz_open ..."]
#        build into build-fuzz/ and run each target for FUZZ_SECONDS;
#        the growing corpus stays in build-fuzz/corpus/TARGET, crashes go
#        to build-fuzz/artifacts/
#   make fuzz-smoke
#        the same, 20 s per target from the committed seeds only (CI)
#   make fuzz-build
#        only build the targets
#
# The library is built here with clang and ASan+UBSan+fuzzer coverage, but
# without -Werror: clang may warn where gcc (the compiler of record) does
# not, and that must not stop a fuzzing run.  The harnesses themselves
# are built with -Werror.
FUZZ_BUILD   ?= build-fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= fuzz_open fuzz_modify fuzz_locator fuzz_nbd fuzz_vhdx
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS   = -std=c11 -O1 -g -fno-omit-frame-pointer -pthread \
		-Wall -Wextra -Werror -D_GNU_SOURCE $(LFS_CPPFLAGS) -Ilibvhd -Inbd
FUZZ_LIB      = $(FUZZ_BUILD)/libmsvhd.a
FUZZ_BINS     = $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-lib
fuzz: fuzz-build
	@sh tests/fuzz/run-fuzzers $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	@FUZZ_SMOKE=1 sh tests/fuzz/run-fuzzers $(FUZZ_BUILD) 20 $(FUZZ_TARGETS)

fuzz-build: fuzz-lib
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

# The library through the ordinary rules, in a build directory of its own.
fuzz-lib:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
		OPT="-O1 -g -fno-omit-frame-pointer" WARN="-Wall -Wextra" \
		CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
		$(FUZZ_BUILD)/libmsvhd.a

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< \
		$(FUZZ_LIB) -pthread

$(FUZZ_BUILD)/fuzz_vhdx: tests/fuzz/fuzz_open.c
$(FUZZ_BUILD)/fuzz_nbd: nbd/server.c nbd/server.h nbd/protocol.h
