# libvhd and its tools.  Objects go to $(BUILD)/obj/, programs to $(BUILD)/.
# One Makefile; each component keeps its object list
# in its own fragment (libvhd/lib.mk, vhdtool/tool.mk, ...).
#
#   make              build the library and the tools into $(BUILD)/
#   make check        every test: unit, CLI, fixtures, FUSE, NBD, sanitizers
#   make demo         a short tour of the tools on images it makes
#   make bench        side-by-side performance against qemu
#   make install PREFIX=DIR [LIBDIR=DIR] [DESTDIR=DIR]

CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
OPT     ?= -O2 -g
WARN    ?= -Wall -Wextra -Werror
CFLAGS  ?=
CPPFLAGS += -D_GNU_SOURCE -Ilibvhd
# Large files in every translation unit (library, tools, tests, fuzz
# targets) and, on glibc, a 64-bit time_t: on 32-bit targets (i686, armhf)
# off_t and time_t are otherwise 32 bits, stat() fails with EOVERFLOW past
# 2 GiB, readdir() with EOVERFLOW on ext4's 64-bit cookies under qemu-user,
# and timestamps stop at 2038.  No-ops on 64-bit targets.  'override' keeps
# them when CPPFLAGS is set on the command line (make portability does).
CC_MACHINE := $(shell $(CC) -dumpmachine 2>/dev/null)
LFS_CPPFLAGS = -D_FILE_OFFSET_BITS=64
ifneq ($(filter %-gnu %-gnueabi %-gnueabihf,$(CC_MACHINE)),)
LFS_CPPFLAGS += -D_TIME_BITS=64
endif
override CPPFLAGS += $(LFS_CPPFLAGS)
ALL_CFLAGS = -std=c11 $(OPT) $(WARN) -fPIC -pthread $(CFLAGS)
LDLIBS  += -pthread

SOVERSION = 1

.PHONY: test-so all lib tools check check-unit check-scripts check-san demo bench install clean deps portability fuzz
all: lib tools

include libvhd/lib.mk
include vhdtool/tool.mk
include vhdfuse/fuse.mk
include nbd/nbd.mk
include tests/tests.mk

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

deps:
	@sh scripts/deps.sh

check: deps
	@$(MAKE) --no-print-directory all test-bins test-so
	@$(MAKE) --no-print-directory BUILD=build-san OPT="-O1 -g -fno-omit-frame-pointer" \
		CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" all test-bins
	@sh tests/run.sh

demo: deps all
	@sh scripts/demo.sh

bench: deps all
	@sh bench/bench.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(INCLUDEDIR)/libvhd
	install -m 755 $(INSTALL_BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIBVHD_A) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(LIBVHD_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf $(LIBVHD_SONAME) $(DESTDIR)$(LIBDIR)/libmsvhd.so
	install -m 644 libvhd/vhd.h $(DESTDIR)$(INCLUDEDIR)/libvhd/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VHD_VERSION)|' \
		libvhd/libvhd.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libvhd.pc
	@for m in $(MAN_PAGES); do install -d $(DESTDIR)$(PREFIX)/share/man/man1; \
		install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/; done

clean:
	rm -rf build build-san build-* 
include tests/fuzz/fuzz.mk
include scripts/portability.mk
