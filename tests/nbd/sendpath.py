#!/usr/bin/python3
# How vhdnbd sends replies (nbd/server.c conn_reply), from outside:
#   sendpath.py slow SOCKET    a client that reads its replies in pauses
#                              longer than the server waits for it (so
#                              the rest goes through the poller, then back
#                              to a worker) gets every reply whole, each
#                              with the data of its own request
#   sendpath.py stuck SOCKET   with --threads 1, a client that never reads
#                              its replies does not keep another client's
#                              READ from being answered within 2 s
# The image's MiB k (k < 16) holds the byte k + 1 (sendpath.sh writes it).
import os
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawnbd import negotiate, recvn  # noqa: E402

MIB = 1 << 20


def fail(msg):
    print("sendpath.py: " + msg, file=sys.stderr)
    sys.exit(1)


def read_req(cookie, off, n):
    return struct.pack(">IHHQQI", 0x25609513, 0, 0, cookie, off, n)


def connect(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(path)
    negotiate(s)
    return s


# Requests of several sizes, each within one MiB of the pattern (so its
# data is a single byte value), at offsets that differ per cookie.
SIZES = [MIB, 256 * 1024 + 17, 4096, 3 * 65536 + 5, MIB - 512, 100000]


def make(cookie):
    n = SIZES[cookie % len(SIZES)]
    mib = (cookie * 7) % 16
    off = mib * MIB + (MIB - n) // 2
    return off, n, mib + 1


mode, path = sys.argv[1], sys.argv[2]
if mode == "slow":
    s = connect(path)
    want = {}

    def send(first, count):
        reqs = []
        for c in range(first, first + count):
            off, n, byte = make(c)
            want[c] = (n, byte)
            reqs.append(read_req(c, off, n))
        s.sendall(b"".join(reqs))

    def take(count):
        for _ in range(count):
            magic, err, cookie = struct.unpack(">IIQ", recvn(s, 16))
            if magic != 0x67446698:
                fail("reply magic %x: the reply stream is out of step" % magic)
            if err or cookie not in want:
                fail("reply error %d for cookie %d" % (err, cookie))
            n, byte = want.pop(cookie)
            got = 0
            while got < n:
                chunk = recvn(s, min(n - got, 128 * 1024))
                if chunk.count(byte) != len(chunk):
                    i = next(i for i, b in enumerate(chunk) if b != byte)
                    fail("reply %d: byte %d where %d belongs, at %d of %d: "
                         "data of another reply" % (cookie, chunk[i], byte, got + i, n))
                got += len(chunk)
                # Pause longer than the server waits for a client.
                time.sleep(0.03)

    send(0, 40)
    time.sleep(0.3)         # let the socket and the queue fill
    take(20)
    send(40, 40)            # replies made while others are queued
    take(60)
    if want:
        fail("%d replies missing" % len(want))
    s.close()
    print("slow: 80 replies read in pauses, each whole and its own")
elif mode == "stuck":
    stuck = connect(path)
    stuck.sendall(b"".join(read_req(c, (c % 16) * MIB, MIB) for c in range(64)))
    time.sleep(0.5)
    t0 = time.monotonic()
    try:
        r = subprocess.run(["qemu-io", "-f", "raw", "-c", "read -P 0x03 2M 64k",
                            "nbd+unix:///?socket=" + path],
                           capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        fail("a READ beside a client that does not read: no answer in 30 s")
    t = time.monotonic() - t0
    if r.returncode != 0 or b"Pattern verification failed" in r.stdout:
        fail("qemu-io read failed: %s %s" % (r.stdout.decode(), r.stderr.decode()))
    if t > 2:
        fail("a READ took %.2f s beside a client that does not read (limit 2 s)" % t)
    print("stuck: another client's READ answered in %.2f s" % t)
    stuck.close()
else:
    fail("unknown mode " + mode)
