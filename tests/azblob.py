#!/usr/bin/env python3
"""azblob.py - test helper for the Azure tests (python3 stdlib only).

Independent of vhdtool's own client, so the tests judge it from outside:
  azblob.py container URL             create a container (Shared Key)
  azblob.py sas BLOBURL [PERMS]       print BLOBURL with an account SAS
  azblob.py ranges BLOBURL            print "start end" (end exclusive) of
                                      each page range (Get Page Ranges)
  azblob.py get BLOBURL FILE          the whole blob into FILE (Get Blob)
  azblob.py pageblob BLOBURL SIZE     create an empty page blob
  azblob.py blockblob BLOBURL         put a small block blob
  azblob.py proxy UPSTREAM PORTFILE COUNTFILE [FAULTS]
      a reverse proxy on 127.0.0.1 (port written to PORTFILE) to UPSTREAM
      (host:port, plain HTTP) that counts the request body bytes it
      forwards (COUNTFILE: "bytes requests answered", answered: response
      body bytes) and injects FAULTS, a comma
      list of:  503every=N (every Nth request answered 503 Retry-After: 1),
      dropevery=N (every Nth request with a body: read half of it, then
      close the connection), hangevery=N (every Nth request with a body:
      no answer for hang=SECS, default 10), delay=SECS (before forwarding
      each request),
      after=N (no faults on the first N requests).  A Put Page whose
      Content-MD5 is missing or wrong is answered 400 and noted in
      COUNTFILE.md5.
Shared Key uses AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY.
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import http.server
import os
import socket
import sys
import threading
import urllib.parse

VERSION = "2021-08-06"


def _key():
    return (os.environ["AZURE_STORAGE_ACCOUNT"],
            base64.b64decode(os.environ["AZURE_STORAGE_KEY"]))


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        "%a, %d %b %Y %H:%M:%S GMT")


def request(method, url, headers=None, body=b""):
    """A Shared Key request; returns (status, headers, body)."""
    acct, key = _key()
    u = urllib.parse.urlsplit(url)
    h = {"x-ms-date": _now(), "x-ms-version": VERSION}
    h.update(headers or {})
    q = urllib.parse.parse_qs(u.query)
    canon_h = "".join("%s:%s\n" % (k, h[k]) for k in sorted(h)
                      if k.startswith("x-ms-"))
    canon_r = "/" + acct + u.path + "".join(
        "\n%s:%s" % (k, ",".join(sorted(q[k]))) for k in sorted(q))
    clen = str(len(body)) if body else ""
    sts = "\n".join([method, "", "", clen, "", "", "", "", "", "", "", ""]) \
        + "\n" + canon_h + canon_r
    sig = base64.b64encode(hmac.new(key, sts.encode(), hashlib.sha256)
                           .digest()).decode()
    h["Authorization"] = "SharedKey %s:%s" % (acct, sig)
    conn = _conn(u)
    conn.request(method, u.path + ("?" + u.query if u.query else ""),
                 body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), data


def _conn(u):
    if u.scheme == "https":
        import ssl
        ctx = ssl.create_default_context(
            cafile=os.environ.get("CURL_CA_BUNDLE"))
        return http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
    return http.client.HTTPConnection(u.hostname, u.port)


def container(url):
    st, _, body = request("PUT", url + "?restype=container")
    if st not in (201, 409):
        sys.exit("container: HTTP %d %s" % (st, body[:200]))


def sas(url, perms="racwd"):
    acct, key = _key()
    start = "2020-01-01T00:00:00Z"
    expiry = "2099-01-01T00:00:00Z"
    # Account SAS, version 2020-12-06 and later: the string to sign ends
    # with the (empty) encryption scope and a newline.
    sts = "\n".join([acct, perms, "b", "sco", start, expiry, "", "https,http",
                     VERSION, "", ""])
    sig = base64.b64encode(hmac.new(key, sts.encode(), hashlib.sha256)
                           .digest()).decode()
    q = urllib.parse.urlencode({"sv": VERSION, "ss": "b", "srt": "sco",
                                "sp": perms, "st": start, "se": expiry,
                                "spr": "https,http", "sig": sig})
    return url + "?" + q


def ranges(url):
    st, _, body = request("GET", url + "?comp=pagelist")
    if st != 200:
        sys.exit("ranges: HTTP %d %s" % (st, body[:200]))
    import xml.etree.ElementTree as ET
    out = []
    for pr in ET.fromstring(body).iter("PageRange"):
        s = int(pr.find("Start").text)
        e = int(pr.find("End").text) + 1
        if out and out[-1][1] == s:
            out[-1][1] = e
        else:
            out.append([s, e])
    for s, e in out:
        print(s, e)


def get(url, path):
    st, _, body = request("GET", url)
    if st != 200:
        sys.exit("get: HTTP %d %s" % (st, body[:200]))
    with open(path, "wb") as f:
        f.write(body)


def pageblob(url, size):
    st, _, body = request("PUT", url, {"x-ms-blob-type": "PageBlob",
                                       "x-ms-blob-content-length": size})
    if st != 201:
        sys.exit("pageblob: HTTP %d %s" % (st, body[:200]))


def blockblob(url):
    st, _, body = request("PUT", url, {"x-ms-blob-type": "BlockBlob"},
                          b"hello")
    if st != 201:
        sys.exit("blockblob: HTTP %d %s" % (st, body[:200]))


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    n = 0
    nbody = 0
    sent = 0
    answered = 0
    faults = {}

    def log_message(self, *a):
        pass

    def _count(self, nbytes, answered=0):
        with Proxy.lock:
            Proxy.sent += nbytes
            Proxy.answered += answered
            with open(Proxy.countfile + ".tmp", "w") as f:
                f.write("%d %d %d\n" % (Proxy.sent, Proxy.n, Proxy.answered))
            os.replace(Proxy.countfile + ".tmp", Proxy.countfile)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        with Proxy.lock:
            Proxy.n += 1
            n = Proxy.n
            if length:
                Proxy.nbody += 1
            nb = Proxy.nbody
        f = Proxy.faults
        on = n > f.get("after", 0)
        if f.get("delay"):
            import time
            time.sleep(f["delay"])
        if on and f.get("dropevery") and length and nb % f["dropevery"] == 0:
            part = self.rfile.read(length // 2)
            self._count(len(part))
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        self._count(len(body))
        if on and f.get("hangevery") and length and nb % f["hangevery"] == 0:
            import time
            time.sleep(f.get("hang", 10))   # no answer: the client times out
            self.close_connection = True
            return
        if "comp=page" in self.path and \
                self.headers.get("x-ms-page-write") == "update":
            # Every Put Page must carry the MD5 of its body.
            want = base64.b64encode(hashlib.md5(body).digest()).decode()
            if self.headers.get("Content-MD5") != want:
                msg = b"<Error><Code>Md5Mismatch</Code></Error>"
                with open(Proxy.countfile + ".md5", "a") as mf:
                    mf.write(self.path + "\n")
                self.send_response(400)
                self.send_header("x-ms-error-code", "Md5Mismatch")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
                return
        if on and f.get("503every") and n % f["503every"] == 0:
            msg = b"<?xml version=\"1.0\"?><Error><Code>ServerBusy</Code></Error>"
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("x-ms-error-code", "ServerBusy")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        up = http.client.HTTPConnection(Proxy.upstream, timeout=120)
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in ("host", "connection")}
        up.request(self.command, self.path, body=body if length else None,
                   headers=hdrs)
        r = up.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection",
                                 "content-length", "date", "server"):
                self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length",
                             r.getheader("Content-Length") or "0")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
            self._count(0, len(data))
        up.close()

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _handle


def proxy(upstream, portfile, countfile, faults=""):
    for item in filter(None, faults.split(",")):
        k, v = item.split("=")
        Proxy.faults[k] = float(v) if k in ("delay", "hang") else int(v)
    Proxy.upstream = upstream
    Proxy.countfile = countfile
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    srv.daemon_threads = True
    with open(countfile, "w") as f:
        f.write("0 0 0\n")
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.replace(portfile + ".tmp", portfile)
    srv.serve_forever()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "container":
        container(*args)
    elif cmd == "sas":
        print(sas(*args))
    elif cmd == "ranges":
        ranges(*args)
    elif cmd == "get":
        get(*args)
    elif cmd == "pageblob":
        pageblob(*args)
    elif cmd == "blockblob":
        blockblob(*args)
    elif cmd == "proxy":
        proxy(*args)
    elif cmd == "freeport":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
        s.close()
    else:
        sys.exit("azblob.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
