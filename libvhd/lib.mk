# libvhd: the library.  Owned by the library; list every source here.
#
# The ELF library is libmsvhd (libmsvhd.so.1, libmsvhd.a), not libvhd:
# Xen's blktap installs its own libvhd.so.0 with its own vhd_open, and a
# different file name, soname and symbol version (LIBVHD_1.0) let both be
# installed and loaded side by side.  The pkg-config module keeps the
# project's name (libvhd.pc), the header installs as <libvhd/vhd.h>.
#
# The version is written once, as numbers in vhd.h.
VHD_VERSION := $(shell awk '/^.define VHD_VERSION_(MAJOR|MINOR|PATCH) / \
	{ v = v s $$3; s = "." } END { print v }' libvhd/vhd.h)
LIBVHD_SRCS = \
	libvhd/err.c libvhd/abi.c libvhd/driver.c libvhd/footer.c libvhd/header.c libvhd/bat.c libvhd/layout.c \
	libvhd/bitmap.c libvhd/io_file.c libvhd/io_mem.c libvhd/vfs.c libvhd/vhd.c \
	libvhd/rw.c libvhd/map.c libvhd/create.c libvhd/check.c \
	libvhd/info.c libvhd/locator.c libvhd/merge.c libvhd/setparent.c libvhd/repair.c libvhd/resize.c libvhd/compact.c libvhd/copy.c libvhd/quirks.c \
	libvhd/crc32c.c libvhd/vhdx.c libvhd/vhdx_meta.c libvhd/vhdx_log.c
LIBVHD_SRCS += libvhd/vhdx_write.c libvhd/vhdx_create.c
LIBVHD_SRCS += libvhd/vhdx_parent.c
LIBVHD_OBJS = $(LIBVHD_SRCS:%.c=$(BUILD)/obj/%.o)
# The copy engine (copy.c) reads and writes gzip streams: zlib, for the
# library and everything linking it.
LDLIBS += -lz
LIBVHD_SONAME = libmsvhd.so.$(SOVERSION)
LIBVHD_MAP = libvhd/libvhd.map
LIBVHD_A  = $(BUILD)/libmsvhd.a
LIBVHD_SO = $(BUILD)/$(LIBVHD_SONAME)

lib: $(LIBVHD_A) $(LIBVHD_SO)

# Only what vhd.h marks VHD_EXPORT leaves the library, in the .so and (as
# far as a static archive allows) when libmsvhd.a is linked into another
# shared object.
$(LIBVHD_OBJS): ALL_CFLAGS += -fvisibility=hidden

$(LIBVHD_A): $(LIBVHD_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBVHD_SO): $(LIBVHD_OBJS) $(LIBVHD_MAP)
	$(CC) -shared -Wl,-soname,$(LIBVHD_SONAME) \
		-Wl,--version-script=$(LIBVHD_MAP) $(LDFLAGS) -o $@ \
		$(LIBVHD_OBJS) $(LDLIBS)
	ln -sf $(LIBVHD_SONAME) $(BUILD)/libmsvhd.so

# The ABI baseline tests/abi/abidiff.sh compares the built library with.
# Only for a deliberate change of the ABI (README, "The library's ABI"):
# regenerate, review `git diff libvhd/abi`, commit with the reason.
LIBVHD_ABI = libvhd/abi/$(LIBVHD_SONAME).abi
.PHONY: abi-baseline
abi-baseline: $(LIBVHD_SO)
	abidw --no-corpus-path --no-show-locs --drop-private-types \
		--header-file libvhd/vhd.h --out-file $(LIBVHD_ABI) $(LIBVHD_SO)
