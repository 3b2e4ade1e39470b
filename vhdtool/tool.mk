# vhdtool: the CLI.  Owned by vhdtool; list every source here.
VHDTOOL_SRCS = vhdtool/main.c vhdtool/util.c vhdtool/cmd_create.c \
	vhdtool/cmd_info.c vhdtool/cmd_check.c vhdtool/cmd_convert.c \
	vhdtool/cmd_map.c vhdtool/cmd_merge.c vhdtool/cmd_resize.c \
	vhdtool/cmd_compact.c vhdtool/progress.c vhdtool/azure.c \
	vhdtool/source.c
# AZURE=0 builds vhdtool without upload/download and so without libcurl
# and Nettle: the static cross builds of `make portability` have neither.
AZURE ?= 1
ifeq ($(AZURE),1)
VHDTOOL_SRCS += vhdtool/blob.c vhdtool/blob_pool.c \
	vhdtool/cmd_upload.c vhdtool/cmd_download.c
VHDTOOL_AZURE_LIBS = -lcurl -lnettle
else
$(BUILD)/obj/vhdtool/main.o: CPPFLAGS += -DVHDTOOL_NO_AZURE
endif
VHDTOOL_OBJS = $(VHDTOOL_SRCS:%.c=$(BUILD)/obj/%.o)
VHDTOOL = $(BUILD)/vhdtool
INSTALL_BINS += $(VHDTOOL)
MAN_PAGES += vhdtool/vhdtool.1
tools: $(VHDTOOL)
$(VHDTOOL): $(VHDTOOL_OBJS) $(LIBVHD_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(VHDTOOL_AZURE_LIBS) $(LDLIBS)
