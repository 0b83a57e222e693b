# SPDX-License-Identifier: Apache-2.0
"""I/O that is not TCP, full of HTTP-looking bytes: if any of it leaked past the kernel filter,
the HTTP parser would turn it into spans.
  peer_file_io.py DIR ROUNDS
Per round: file write/read, writev/readv, file->file sendfile, pipe write/read, AF_UNIX
socketpair send/recv, UDP sendto/recvfrom on 127.0.0.1. Prints 'done SYSCALLS' (the number of
data syscalls made) at the end."""

import os
import socket
import sys

REQ = b"GET /file-io-must-not-trace HTTP/1.1\r\nHost: x\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def main():
    d, rounds = sys.argv[1], int(sys.argv[2])
    path, copy = os.path.join(d, "io.bin"), os.path.join(d, "io.copy")
    pr, pw = os.pipe()
    ua, ub = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    udp_rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_rx.bind(("127.0.0.1", 0))
    udp_tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    calls = 0
    for _ in range(rounds):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, REQ)
        os.writev(fd, [RESP, REQ])
        os.lseek(fd, 0, os.SEEK_SET)
        os.read(fd, 4096)
        os.lseek(fd, 0, os.SEEK_SET)
        os.readv(fd, [bytearray(64), bytearray(64)])
        out = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.sendfile(out, fd, 0, len(REQ))
        os.close(out)
        os.close(fd)
        os.write(pw, REQ)
        os.read(pr, 4096)
        ua.sendall(REQ)
        ub.recv(4096)
        ub.sendall(RESP)
        ua.recv(4096)
        udp_tx.sendto(REQ, udp_rx.getsockname())
        udp_rx.recvfrom(4096)
        calls += 13
    print(f"done {calls}", flush=True)


if __name__ == "__main__":
    main()
