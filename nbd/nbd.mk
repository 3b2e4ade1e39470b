# vhdnbd: NBD server.  Owned by the NBD front-end; list every source here.
VHDNBD_SRCS = nbd/main.c nbd/server.c
VHDNBD_OBJS = $(VHDNBD_SRCS:%.c=$(BUILD)/obj/%.o)
VHDNBD = $(BUILD)/vhdnbd
INSTALL_BINS += $(VHDNBD)
MAN_PAGES += nbd/vhdnbd.1
tools: $(VHDNBD)
$(VHDNBD): $(VHDNBD_OBJS) $(LIBVHD_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
