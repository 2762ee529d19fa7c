#!/usr/bin/env python3
# A stand-in for a daemon that does no work: answers /_ping (advertising the classic builder)
# and drains POST /build's body before answering with an image ID. bench/build-floor.sh times
# the docker CLI against it: the floor a cached rebuild through the CLI cannot go below.
import socket, os, sys, threading
path = sys.argv[1]
try: os.unlink(path)
except FileNotFoundError: pass
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(16)
def recv_headers(c, buf):
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d: return None, b""
        buf += d
    h, rest = buf.split(b"\r\n\r\n", 1)
    return h.decode(), rest
def handle(c):
    buf = b""
    while True:
        h, buf = recv_headers(c, buf)
        if h is None: return
        first = h.split("\r\n")[0]
        lower = h.lower()
        if "/_ping" in first:
            body = b"" if first.startswith("HEAD") else b"OK"
            c.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nBuilder-Version: 1\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            continue
        if "/build" in first:
            n = 0
            if "transfer-encoding: chunked" in lower:
                while not buf.endswith(b"0\r\n\r\n"):
                    d = c.recv(1 << 20)
                    if not d: break
                    n += len(d)
                    buf = buf[-5:] + d
            else:
                import re
                m = re.search(r"content-length: (\d+)", lower)
                want = int(m.group(1)) if m else 0
                got = len(buf)
                while got < want:
                    d = c.recv(1 << 20)
                    if not d: break
                    got += len(d)
            out = b'{"aux":{"ID":"sha256:' + b"0"*64 + b'"}}\r\n{"stream":"sha256:' + b"0"*64 + b'\\n"}\r\n'
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(out) + out)
            buf = b""
            continue
        c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
