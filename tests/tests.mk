# Tests: cmocka unit tests, one binary per tests/test_*.c, linked with libmsvhd.a.
UNIT_SRCS = $(wildcard tests/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/%.c=$(BUILD)/tests/%)
TEST_HELPERS = $(filter-out $(UNIT_SRCS),$(wildcard tests/lib_*.c))
TEST_HELPER_OBJS = $(TEST_HELPERS:%.c=$(BUILD)/obj/%.o)
test-bins: $(UNIT_BINS)
$(BUILD)/tests/test_%: $(BUILD)/obj/tests/test_%.o $(TEST_HELPER_OBJS) $(LIBVHD_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)
$(BUILD)/obj/tests/test_api_iso.o: ALL_CFLAGS += -pedantic

# The public-API suite once more, linked with the shared library (run by
# tests/abi/shared.sh with LD_LIBRARY_PATH=$(BUILD)).  Not in test-bins:
# the static cross builds of make portability have no .so.
SO_TESTS = $(BUILD)/tests-so/test_api_iso
test-so: $(SO_TESTS)
$(BUILD)/tests-so/test_%: $(BUILD)/obj/tests/test_%.o $(LIBVHD_SO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -L$(BUILD) -lmsvhd $(LDLIBS)
