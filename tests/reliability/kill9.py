"""Helper of kill9_nbd.sh and kill9_fuse.sh (not a test by itself).

  kill9.py nbd SOCKET LOG SEED SIZE   write through an NBD Unix socket
  kill9.py file PATH LOG SEED SIZE    write into a (FUSE-mounted) disk file
      Random 64 KiB writes at random unaligned offsets, a flush (NBD FLUSH,
      fsync) every few writes, until an error (the server is killed) or
      10 s.  LOG gets "W OFFSET SEED" before each write is issued (so a
      write the server did but never acknowledged is still known) and "F"
      after each flush returned.
  kill9.py verify BEFORE.raw AFTER.raw LOG
      Every write before the last "F" must read back in AFTER.raw; bytes
      written after it may hold old or new data; all other bytes must equal
      BEFORE.raw.
"""
import os
import random
import sys
import time

CHUNK = 65536


def data_for(seed):
    return random.Random(seed).randbytes(CHUNK)


def write_loop(kind, target, log, seed, size):
    rng = random.Random(seed)
    deadline = time.time() + 10
    if kind == "nbd":
        import nbd
        h = nbd.NBD()
        h.connect_unix(target)
        pwrite, flush = h.pwrite, h.flush
    else:
        fd = os.open(target, os.O_WRONLY)

        def pwrite(buf, off):
            if os.pwrite(fd, buf, off) != len(buf):
                raise OSError("short write")
        flush = lambda: os.fsync(fd)
    # Connected: tell the script, which only then picks its moment to kill
    # (under load, starting python can take longer than the kill delay).
    open(log + ".ready", "w").close()
    n = flushes = 0
    with open(log, "w") as lg:
        try:
            while time.time() < deadline:
                off = rng.randrange(0, size - CHUNK)
                ws = rng.randrange(1 << 30)
                lg.write("W %d %d\n" % (off, ws))
                lg.flush()
                pwrite(data_for(ws), off)
                n += 1
                if n % 6 == 0:
                    flush()
                    lg.write("F\n")
                    lg.flush()
                    flushes += 1
        except Exception as e:          # the server went away
            print("writer stopped after %d writes, %d flushes: %s"
                  % (n, flushes, str(e).splitlines()[0]))
            return 0
    print("writer ran out of time (%d writes): the kill came too late" % n)
    return 0


def verify(before, after, log):
    exp = bytearray(open(before, "rb").read())
    got = open(after, "rb").read()
    if len(got) != len(exp):
        sys.exit("size changed: %d -> %d" % (len(exp), len(got)))
    lines = open(log).read().split("\n")
    # a line cut by the kill is not a record
    recs = [l.split() for l in lines if l in ("F",) or l.startswith("W ")]
    last_f = max([i for i, r in enumerate(recs) if r == ["F"]], default=-1)
    flushed = 0
    for r in recs[:last_f + 1]:
        if r[0] == "W":
            off = int(r[1])
            exp[off:off + CHUNK] = data_for(int(r[2]))
            flushed += 1
    dirty = 0
    for r in recs[last_f + 1:]:
        if r[0] == "W" and len(r) == 3:
            off = int(r[1])
            exp[off:off + CHUNK] = got[off:off + CHUNK]
            dirty += 1
    if bytes(exp) != got:
        bad = next(i for i in range(len(got)) if exp[i] != got[i])
        sys.exit("byte %d: expected %d, found %d (flushed data lost or "
                 "unwritten data changed)" % (bad, exp[bad], got[bad]))
    print("verified: %d flushed writes hold, %d unflushed ones tolerated"
          % (flushed, dirty))


def main():
    a = sys.argv[1:]
    if a[0] in ("nbd", "file"):
        sys.exit(write_loop(a[0], a[1], a[2], int(a[3]), int(a[4])))
    if a[0] == "verify":
        verify(a[1], a[2], a[3])
        return
    sys.exit(__doc__)


main()
