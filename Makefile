# libvhd and its tools.  Objects go to $(BUILD)/obj/, programs to $(BUILD)/.
# One Makefile; each component keeps its object list
# in its own fragment (libvhd/lib.mk, vhdtool/tool.mk, ...).
#
#   make              build the library and the tools into $(BUILD)/
#   make deps         install the Debian packages building and testing need
#   make check        every test: unit, CLI, fixtures, FUSE, NBD, sanitizers
#   make demo         a short tour of the tools on images it makes
#   make deb          Debian packages (dpkg-buildpackage), judged by lintian
#   make fresh-check  demo, check and deb on a fresh Debian 12 root
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

.PHONY: test-so all lib tools check check-unit check-scripts check-san demo bench install clean deps portability fuzz deb fresh-check
all: lib tools

# Building needs a few Debian packages (scripts/deps.sh, group [build]).
# Without them, say which instead of failing in the compiler.  Only goals
# that compile here are checked; check, demo and deb install them first
# and then build in a new make, which reads pkg-config after the install.
BUILD_GOALS = all lib tools test-bins test-so install
ifneq ($(if $(MAKECMDGOALS),$(filter $(BUILD_GOALS),$(MAKECMDGOALS)),all),)
DEPS_MISSING := $(shell sh scripts/deps.sh --check build)
ifneq ($(DEPS_MISSING),)
$(info $(DEPS_MISSING))
$(info install them with `make deps` as root (or the apt-get line it prints))
$(error build dependencies missing)
endif
endif

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

# $(call logged_make,LOG,ARGS): a sub-make whose compiler lines go to LOG;
# the screen gets one line, or the log's tail if the build fails.
logged_make = mkdir -p $(dir $(1)) && echo "build: make $(firstword $(2)) ... (log: $(1))" && \
	{ $(MAKE) --no-print-directory $(2) >$(1) 2>&1 || \
	{ tail -30 $(1); echo "build failed; whole log: $(1)"; exit 1; }; }

SAN_MAKE = BUILD=build-san OPT="-O1 -g -fno-omit-frame-pointer" \
	CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
	LDFLAGS="-fsanitize=address,undefined" all test-bins

check: deps
	@$(call logged_make,$(BUILD)/build.log,all test-bins test-so)
	@$(call logged_make,build-san/build.log,$(SAN_MAKE))
	@sh tests/run.sh

demo: deps
	@$(call logged_make,$(BUILD)/build.log,all)
	@sh scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@sh bench/bench.sh

# Debian packages into ../ (dpkg-buildpackage's place), then lintian.
deb:
	@sh scripts/deps.sh deb
	dpkg-buildpackage -b -us -uc
	lintian --fail-on error --suppress-tags bad-distribution-in-changes-file \
		../libvhd_$$(dpkg-parsechangelog -S Version)_$$(dpkg --print-architecture).changes

fresh-check:
	@sh scripts/fresh-machine.sh

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
