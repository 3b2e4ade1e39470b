# Tests: cmocka unit tests, one binary per tests/test_*.c, linked with libvhd.a.
UNIT_SRCS = $(wildcard tests/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/%.c=$(BUILD)/tests/%)
TEST_HELPERS = $(filter-out $(UNIT_SRCS),$(wildcard tests/lib_*.c))
TEST_HELPER_OBJS = $(TEST_HELPERS:%.c=$(BUILD)/obj/%.o)
test-bins: $(UNIT_BINS)
$(BUILD)/tests/test_%: $(BUILD)/obj/tests/test_%.o $(TEST_HELPER_OBJS) $(LIBVHD_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)
$(BUILD)/obj/tests/test_api_iso.o: ALL_CFLAGS += -pedantic
