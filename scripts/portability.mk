# make portability: the library, vhdtool and the unit tests built and run
# for x86_64 (gcc, clang), i686, armhf and s390x (qemu-user) and Windows
# (mingw-w64, wine); see scripts/portability.sh.  Owned by the portability
# work.  PORT_QEMU_USER=1: i686 (and armhf) under qemu-user even where the
# kernel runs them natively.
PORT_QEMU_USER ?= 0
.PHONY: portability portability-srcs
portability:
	@LIBVHD_SRCS="$(LIBVHD_SRCS)" PORT_QEMU_USER="$(PORT_QEMU_USER)" \
		sh scripts/portability.sh

# The library's sources, for the script run by hand.
portability-srcs:
	@echo $(LIBVHD_SRCS)
