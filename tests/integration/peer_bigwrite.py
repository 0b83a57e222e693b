# SPDX-License-Identifier: Apache-2.0
"""One process that writes SIZE bytes in ONE send() call over loopback, for test_faults.py.
  peer_bigwrite.py sink            listens on 127.0.0.1:0, prints its port, reads to EOF,
                                   prints the byte count
  peer_bigwrite.py send PORT SIZE  connects, makes one send() of SIZE bytes, closes,
                                   prints what that send() returned
Run as two processes so that the agent sees a client and a server service."""
import socket
import sys

if sys.argv[1] == "sink":
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    print(srv.getsockname()[1], flush=True)
    c, _ = srv.accept()
    total = 0
    buf = bytearray(1 << 20)
    while True:
        n = c.recv_into(buf)
        if not n:
            break
        total += n
    c.close()
    print(total, flush=True)
else:
    port, size = int(sys.argv[2]), int(sys.argv[3])
    blob = bytearray(size)  # zero pages until written: the kernel copies them as it sends
    cl = socket.create_connection(("127.0.0.1", port))
    sent = cl.send(blob)  # one call: a blocking TCP send returns when all of it is queued
    cl.close()
    print(sent, flush=True)
