# SPDX-License-Identifier: Apache-2.0
"""Sends N blocks of 4 KiB of random bytes over one loopback TCP connection: a protocol no
parser knows, for the test that checks the kernel stops copying such connections."""
import socket, threading, os, sys, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1); port = srv.getsockname()[1]
def serve():
    c, _ = srv.accept()
    n = 0
    while True:
        d = c.recv(65536)
        if not d: break
        n += len(d)
    c.close()
t = threading.Thread(target=serve); t.start()
cl = socket.create_connection(("127.0.0.1", port))
blob = os.urandom(4096)
for i in range(int(sys.argv[1])):
    cl.sendall(blob)
cl.close(); t.join()
print("sent", int(sys.argv[1]) * 4096)
