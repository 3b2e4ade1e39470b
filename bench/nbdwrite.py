#!/usr/bin/python3
"""Write pseudo-random data into an NBD export (set-up for benchmarks).

nbdwrite.py URI stride BLOCK STRIDE [RAW]
    fill every STRIDE-th BLOCK-byte block (0, STRIDE, 2*STRIDE, ...);
    with RAW, write the same bytes at the same offsets into the raw file
    RAW (created sparse at the export's size), a plain copy of the data.
nbdwrite.py URI at LEN OFFSET...
    write LEN bytes at each OFFSET (a negative OFFSET counts from the end).
Prints the number of bytes written.
"""
import os
import random
import sys

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
        raw = None
        if len(sys.argv) > 5:
            raw = os.open(sys.argv[5], os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                          0o644)
            os.ftruncate(raw, size)
        for off in range(0, size, block * stride):
            n = min(block, size - off)
            buf = rng.randbytes(n)
            for i in range(0, n, 1 << 22):
                h.pwrite(buf[i:i + (1 << 22)], off + i)
            if raw is not None:
                os.pwrite(raw, buf, off)
            written += n
        if raw is not None:
            os.close(raw)
    elif mode == "at":
        length = int(sys.argv[3])
        for o in sys.argv[4:]:
            off = int(o)
            if off < 0:
                off += size
            buf = rng.randbytes(length)
            h.pwrite(buf, off)
            written += length
    else:
        sys.exit("nbdwrite.py: unknown mode " + mode)
    h.flush()
    h.shutdown()
    print(written)


if __name__ == "__main__":
    main()
