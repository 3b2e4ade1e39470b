#!/usr/bin/python3
"""mkimage.py FILE SIZE CHUNK [SEED]

Write a raw disk image of SIZE bytes made of CHUNK-byte chunks that
alternate between pseudo-random data (first) and written zeros, so half
the disk is data and half is zeros.  Deterministic for a given SEED.
"""
import os
import random
import sys


def main():
    path, size, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    zeros = bytes(chunk)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        off, i = 0, 0
        while off < size:
            n = min(chunk, size - off)
            buf = rng.randbytes(n) if i % 2 == 0 else zeros[:n]
            os.pwrite(fd, buf, off)
            off += n
            i += 1
    finally:
        os.close(fd)


if __name__ == "__main__":
    main()
