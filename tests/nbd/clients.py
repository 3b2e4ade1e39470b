#!/usr/bin/python3
# Checks through libnbd (python3-libnbd), the client library real tools
# use.  Usage: clients.py rw URI SIZE   (writable export)
#              clients.py ro URI SIZE   (read-only export)
import errno
import sys
import threading

import nbd

mode, URI, SIZE = sys.argv[1], sys.argv[2], int(sys.argv[3])
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def connect(strict=True):
    h = nbd.NBD()
    if not strict:
        h.set_strict_mode(0)        # let bad requests reach the server
    h.connect_uri(URI)
    return h


def expect_errno(fn, want, what):
    try:
        fn()
        check(False, "%s succeeded" % what)
    except nbd.Error as e:
        check(e.errno == errno.errorcode[want],
              "%s: errno %s, expected %s (%s)" % (what, e.errno, errno.errorcode[want], e.string))


# INFO then GO on one connection: the same size and flags.
h = nbd.NBD()
h.set_opt_mode(True)
h.set_full_info(True)
h.connect_uri(URI)
h.opt_info()
before = (h.get_size(), h.is_read_only(), h.can_flush(), h.can_fua(), h.can_trim(),
          h.can_zero(), h.can_fast_zero(), h.can_df(), h.can_multi_conn(), h.can_cache(),
          h.get_block_size(nbd.SIZE_MINIMUM), h.get_block_size(nbd.SIZE_PREFERRED),
          h.get_block_size(nbd.SIZE_MAXIMUM), h.get_canonical_export_name())
h.opt_go()
after = (h.get_size(), h.is_read_only(), h.can_flush(), h.can_fua(), h.can_trim(),
         h.can_zero(), h.can_fast_zero(), h.can_df(), h.can_multi_conn(), h.can_cache(),
         h.get_block_size(nbd.SIZE_MINIMUM), h.get_block_size(nbd.SIZE_PREFERRED),
         h.get_block_size(nbd.SIZE_MAXIMUM), h.get_canonical_export_name())
check(before == after, "INFO %r != GO %r" % (before, after))
check(after[0] == SIZE, "size %d, expected %d" % (after[0], SIZE))
h.shutdown()

h = connect(strict=False)
# An error reply leaves the connection usable.
expect_errno(lambda: h.pread(1024, SIZE - 512), errno.EINVAL, "read past end")
check(len(h.pread(512, 0)) == 512, "read after an error")
if mode == "ro":
    check(h.is_read_only(), "export not read-only")
    before = h.pread(4096, 0)
    expect_errno(lambda: h.pwrite(b"x" * 4096, 0), errno.EPERM, "write to read-only export")
    expect_errno(lambda: h.trim(4096, 0), errno.EPERM, "trim of read-only export")
    expect_errno(lambda: h.zero(4096, 0), errno.EPERM, "zero of read-only export")
    check(h.pread(4096, 0) == before, "read-only export changed")
    h.flush()
else:
    expect_errno(lambda: h.pwrite(b"x" * 1024, SIZE - 512), errno.ENOSPC, "write past end")
    # Multi-conn: a FUA write on one connection is seen by another at once.
    h2 = connect()
    check(h2.can_multi_conn(), "no multi-conn")
    for i in range(20):
        data = bytes([i + 1]) * 4096
        h.pwrite(data, i * 8192, nbd.CMD_FLAG_FUA)
        check(h2.pread(4096, i * 8192) == data, "write %d not visible on another connection" % i)
    h2.pwrite(b"z" * 512, 512)
    h2.flush()
    check(h.pread(512, 512) == b"z" * 512, "flushed write not visible")
    # Fast zero where data must be written: ENOTSUP, nothing changed.
    try:
        h.zero(512, 8192, nbd.CMD_FLAG_FAST_ZERO)
    except nbd.Error as e:
        check(e.errno == "ENOTSUP", "fast zero errno %s" % e.errno)
        check(h.pread(512, 8192) == b"\2" * 512, "failed fast zero changed data")
    h2.shutdown()
h.shutdown()

# Many clients at once, each with requests in flight.
errors = []


def client(k):
    try:
        c = connect()
        cookies = [c.aio_pread(nbd.Buffer(65536), (k * 65536 * 7 + j * 65536) % (SIZE - 65536))
                   for j in range(16)]
        while any(not c.aio_command_completed(ck) for ck in cookies if ck) and c.aio_in_flight():
            c.poll(-1)
        c.shutdown()
    except Exception as e:  # noqa
        errors.append(repr(e))


threads = [threading.Thread(target=client, args=(k,)) for k in range(40)]
for t in threads:
    t.start()
for t in threads:
    t.join()
check(not errors, "concurrent clients failed: %s" % errors[:3])

if failures:
    sys.exit("%d failures" % len(failures))
print("all client checks passed (%s)" % mode)
