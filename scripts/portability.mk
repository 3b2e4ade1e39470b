# make portability: the library, vhdtool and the unit tests built and run
# for x86_64 (gcc, clang), i686, s390x (qemu-user) and Windows (mingw-w64,
# wine); see scripts/portability.sh.  Owned by the portability work.
.PHONY: portability portability-srcs
portability:
	@LIBVHD_SRCS="$(LIBVHD_SRCS)" sh scripts/portability.sh

# The library's sources, for the script run by hand.
portability-srcs:
	@echo $(LIBVHD_SRCS)
