# vhdtool: the CLI.  Owned by vhdtool; list every source here.
VHDTOOL_SRCS = vhdtool/main.c
VHDTOOL_OBJS = $(VHDTOOL_SRCS:%.c=$(BUILD)/%.o)
VHDTOOL = $(BUILD)/vhdtool
INSTALL_BINS += $(VHDTOOL)
MAN_PAGES += vhdtool/vhdtool.1
tools: $(VHDTOOL)
$(VHDTOOL): $(VHDTOOL_OBJS) $(LIBVHD_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
