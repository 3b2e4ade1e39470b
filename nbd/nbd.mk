# vhdnbd: NBD server.  Owned by the NBD front-end; list every source here.
VHDNBD_SRCS = nbd/main.c nbd/server.c nbd/tls.c
VHDNBD_OBJS = $(VHDNBD_SRCS:%.c=$(BUILD)/obj/%.o)
VHDNBD = $(BUILD)/vhdnbd
INSTALL_BINS += $(VHDNBD)
MAN_PAGES += nbd/vhdnbd.1
# GnuTLS (libgnutls28-dev) for --tls; only tls.c includes it.
GNUTLS_CFLAGS := $(shell pkg-config --cflags gnutls 2>/dev/null)
GNUTLS_LIBS := $(shell pkg-config --libs gnutls 2>/dev/null || echo -lgnutls)
$(BUILD)/obj/nbd/tls.o: CPPFLAGS += $(GNUTLS_CFLAGS)
tools: $(VHDNBD)
$(VHDNBD): $(VHDNBD_OBJS) $(LIBVHD_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(GNUTLS_LIBS) $(LDLIBS)
