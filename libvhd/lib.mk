# libvhd: the library.  Owned by the library; list every source here.
VHD_VERSION = 0.1.0
LIBVHD_SRCS = \
	libvhd/err.c libvhd/footer.c libvhd/header.c libvhd/bat.c \
	libvhd/bitmap.c libvhd/io_file.c libvhd/io_mem.c libvhd/vhd.c \
	libvhd/rw.c libvhd/map.c libvhd/create.c libvhd/check.c \
	libvhd/info.c libvhd/locator.c libvhd/merge.c libvhd/setparent.c libvhd/repair.c libvhd/resize.c libvhd/compact.c
LIBVHD_OBJS = $(LIBVHD_SRCS:%.c=$(BUILD)/obj/%.o)
LIBVHD_A  = $(BUILD)/libvhd.a
LIBVHD_SO = $(BUILD)/libvhd.so.$(SOVERSION)

lib: $(LIBVHD_A) $(LIBVHD_SO)

$(LIBVHD_A): $(LIBVHD_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBVHD_SO): $(LIBVHD_OBJS)
	$(CC) -shared -Wl,-soname,libvhd.so.$(SOVERSION) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	ln -sf libvhd.so.$(SOVERSION) $(BUILD)/libvhd.so
