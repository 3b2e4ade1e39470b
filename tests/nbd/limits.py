#!/usr/bin/python3
# Resource bounds of vhdnbd, measured from outside (loopback only):
#   limits.py flood PORT            1,000 silent TCP connections held open:
#                                   a libnbd client is still served < 2 s
#   limits.py timeout PORT MIN MAX  a silent connection is closed by the
#                                   server after MIN..MAX seconds
#   limits.py idle SOCKET PID       1,000 negotiated idle clients add < 100
#                                   threads, and each is still served
#   limits.py stuck SOCKET PID      4 clients queue 400 READs of 32 MiB and
#                                   never read: peak RSS < 512 MiB, others
#                                   still served; then SIGTERM: exit 0 < 10 s
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawnbd import negotiate, recvn  # noqa: E402



def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def status(pid, key):
    for line in open("/proc/%d/status" % pid):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    fail("no %s in /proc/%d/status" % (key, pid))


def read_req(s, cookie, off, n):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, cookie, off, n))


def read_reply(s, n):
    magic, err, _ = struct.unpack(">IIQ", recvn(s, 16))
    if magic != 0x67446698 or err:
        fail("bad reply %x %d" % (magic, err))
    return recvn(s, n)


def served(uri, limit):
    t0 = time.monotonic()
    r = subprocess.run(["nbdinfo", "--size", uri], capture_output=True, timeout=30)
    t = time.monotonic() - t0
    if r.returncode != 0:
        fail("nbdinfo %s failed: %s" % (uri, r.stderr.decode()))
    if t > limit:
        fail("nbdinfo took %.2f s (limit %.1f s)" % (t, limit))
    return t


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))


mode = sys.argv[1]
raise_nofile()

if mode == "flood":
    port = int(sys.argv[2])
    socks = []
    for _ in range(1000):
        s = socket.create_connection(("127.0.0.1", port))
        socks.append(s)
    time.sleep(0.5)
    t = served("nbd://127.0.0.1:%d" % port, 2.0)
    print("flood: 1000 silent connections held, nbdinfo served in %.2f s" % t)
    t = served("nbd://127.0.0.1:%d" % port, 2.0)
    for s in socks:
        s.close()

elif mode == "timeout":
    port, lo, hi = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(hi + 5)
    t0 = time.monotonic()
    try:
        recvn(s, 18)            # the greeting, then silence from us
        while s.recv(4096):
            pass
    except (EOFError, ConnectionResetError):
        pass
    except socket.timeout:
        fail("silent connection still open after %.1f s" % (hi + 5))
    t = time.monotonic() - t0
    if not lo <= t <= hi:
        fail("silent connection closed after %.2f s, expected %.1f..%.1f" % (t, lo, hi))
    print("timeout: silent connection closed after %.2f s" % t)

elif mode == "idle":
    path, pid = sys.argv[2], int(sys.argv[3])
    before = status(pid, "Threads")
    socks = []
    for _ in range(1000):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(20)
        s.connect(path)
        negotiate(s)
        socks.append(s)
    time.sleep(1)
    after = status(pid, "Threads")
    print("idle: threads %d before, %d with 1000 negotiated idle clients" % (before, after))
    if after - before >= 100:
        fail("1000 idle clients added %d threads" % (after - before))
    # Every one of them is still served.
    for i, s in enumerate(socks):
        read_req(s, i, (i % 16) * 4096, 4096)
    for s in socks:
        if len(read_reply(s, 4096)) != 4096:
            fail("short read")
    for s in socks:
        s.close()

elif mode == "stuck":
    path, pid = sys.argv[2], int(sys.argv[3])
    stuck = []
    for _ in range(4):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(20)
        s.connect(path)
        negotiate(s)
        # All 400 at once (the requests are 28 bytes each).
        s.sendall(b"".join(struct.pack(">IHHQQI", 0x25609513, 0, 0, i,
                                       (i % 2) * (32 << 20), 32 << 20)
                           for i in range(400)))
        stuck.append(s)
    # Give the server time to read what it will and fill its queues.
    time.sleep(4)
    hwm = status(pid, "VmHWM") // 1024
    rss = status(pid, "VmRSS") // 1024
    print("stuck: 4 clients x 400 READs of 32 MiB unread: RSS %d MiB, peak %d MiB" % (rss, hwm))
    if hwm >= 512:
        fail("peak RSS %d MiB with 4 stuck clients" % hwm)
    # Everyone else is still served, quickly.
    served("nbd+unix:///?socket=" + path, 2.0)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    negotiate(s)
    read_req(s, 1, 0, 1 << 20)
    if len(read_reply(s, 1 << 20)) != 1 << 20:
        fail("a fresh client's read failed")
    s.close()
    # SIGTERM with the stuck clients still connected.
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while os.path.exists("/proc/%d" % pid):
        try:
            st = open("/proc/%d/stat" % pid).read().split()[2]
            if st == "Z":
                break
        except FileNotFoundError:
            break
        if time.monotonic() - t0 > 10:
            fail("server still running 10 s after SIGTERM")
        time.sleep(0.05)
    print("stuck: exited %.2f s after SIGTERM" % (time.monotonic() - t0))
    for s in stuck:
        s.close()
else:
    fail("unknown mode " + mode)
