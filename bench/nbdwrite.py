#!/usr/bin/python3
"""Write pseudo-random data into an NBD export (set-up for benchmarks).

nbdwrite.py URI stride BLOCK STRIDE [RAW...]
    fill every STRIDE-th BLOCK-byte block (0, STRIDE, 2*STRIDE, ...) and
    write the same bytes at the same offsets into each raw file RAW: made
    anew (sparse, at the export's size), or with +RAW written over the
    existing file.
nbdwrite.py URI at LEN OFFSET...
    write LEN bytes at each OFFSET (a negative OFFSET counts from the end).
Prints the number of bytes written.
nbdwrite.py URI fua SECONDS
    4 KiB writes with NBD_CMD_FLAG_FUA at random aligned offsets, one at a
    time, for SECONDS; prints the writes per second.
"""
import os
import random
import sys
import time

import nbd


def main():
    uri, mode = sys.argv[1], sys.argv[2]
    h = nbd.NBD()
    h.connect_uri(uri)
    size = h.get_size()
    rng = random.Random(7)
    written = 0
    if mode == "stride":
        block, stride = int(sys.argv[3]), int(sys.argv[4])
        raws = []
        for path in sys.argv[5:]:
            if path.startswith("+"):
                raws.append(os.open(path[1:], os.O_WRONLY))
            else:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                             0o644)
                os.ftruncate(fd, size)
                raws.append(fd)
        for off in range(0, size, block * stride):
            n = min(block, size - off)
            buf = rng.randbytes(n)
            for i in range(0, n, 1 << 22):
                h.pwrite(buf[i:i + (1 << 22)], off + i)
            for fd in raws:
                os.pwrite(fd, buf, off)
            written += n
        for fd in raws:
            os.close(fd)
    elif mode == "at":
        length = int(sys.argv[3])
        for o in sys.argv[4:]:
            off = int(o)
            if off < 0:
                off += size
            buf = rng.randbytes(length)
            h.pwrite(buf, off)
            written += length
    elif mode == "fua":
        if not h.can_fua():
            sys.exit("nbdwrite.py: the server does not offer FUA")
        seconds = float(sys.argv[3])
        buf = rng.randbytes(4096)
        n = 0
        t0 = time.monotonic()
        while True:
            h.pwrite(buf, rng.randrange(size // 4096) * 4096,
                     nbd.CMD_FLAG_FUA)
            n += 1
            t = time.monotonic() - t0
            if t >= seconds:
                break
        h.shutdown()
        print("%.0f" % (n / t))
        return
    else:
        sys.exit("nbdwrite.py: unknown mode " + mode)
    h.flush()
    h.shutdown()
    print(written)


if __name__ == "__main__":
    main()
