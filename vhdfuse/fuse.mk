# vhdfuse: FUSE front-end (the only component that uses pkg-config fuse3).
VHDFUSE_SRCS = vhdfuse/main.c vhdfuse/ops.c vhdfuse/part.c vhdfuse/pdw.c
VHDFUSE_OBJS = $(VHDFUSE_SRCS:%.c=$(BUILD)/obj/%.o)
VHDFUSE = $(BUILD)/vhdfuse
FUSE3_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE3_LIBS := $(shell pkg-config --libs fuse3 2>/dev/null || echo -lfuse3)
INSTALL_BINS += $(VHDFUSE)
MAN_PAGES += vhdfuse/vhdfuse.1
tools: $(VHDFUSE)
$(VHDFUSE_OBJS): CPPFLAGS += $(FUSE3_CFLAGS)
$(VHDFUSE): $(VHDFUSE_OBJS) $(LIBVHD_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(FUSE3_LIBS) $(LDLIBS)
