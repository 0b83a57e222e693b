# SPDX-License-Identifier: Apache-2.0
"""A tiny DNS resolver for the tests (UDP, RFC 1035 messages built by hand).
  peer_dns.py ADDR PORT NAME IPV4 TTL [LOG]
Answers NAME A with IPV4 (TTL seconds) and NAME AAAA with no record; any other name NXDOMAIN.
Prints 'ready' once bound. With LOG, appends "qname qtype rcode ancount" per answer sent.
With DNS_TCP=1 in the environment it serves DNS over TCP instead (RFC 1035 4.2.2: a two-byte
length before each message), one connection at a time, queries answered in order."""

import os

import socket
import struct
import sys


def parse_question(msg):
    """(id, flags, qname lower-case, qtype, end of the question) of a query."""
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    pos, labels = 12, []
    while msg[pos]:
        n = msg[pos]
        labels.append(msg[pos + 1:pos + 1 + n].decode("ascii", "replace").lower())
        pos += 1 + n
    qtype, _qclass = struct.unpack("!HH", msg[pos + 1:pos + 5])
    return qid, flags, ".".join(labels), qtype, pos + 5, qd


def answer(msg, name, ipv4, ttl):
    qid, flags, qname, qtype, end, qd = parse_question(msg)
    question = msg[12:end]
    rd = flags & 0x0100
    if qname != name:
        return struct.pack("!HHHHHH", qid, 0x8083 | rd, qd, 0, 0, 0) + question, \
            (qname, qtype, 3, 0)
    if qtype != 1:  # AAAA and the rest: the name exists, no such record
        return struct.pack("!HHHHHH", qid, 0x8080 | rd, qd, 0, 0, 0) + question, \
            (qname, qtype, 0, 0)
    record = struct.pack("!HHHIH", 0xC00C, 1, 1, ttl, 4) + socket.inet_aton(ipv4)
    return struct.pack("!HHHHHH", qid, 0x8080 | rd, qd, 1, 0, 0) + question + record, \
        (qname, qtype, 0, 1)


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        part = conn.recv(n - len(data))
        if not part:
            return None
        data += part
    return data


def serve_tcp(addr, port, name, ipv4, ttl, log):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(8)
    print("ready", flush=True)
    while True:
        conn, _ = s.accept()
        with conn:
            while True:
                head = read_exact(conn, 2)
                msg = head and read_exact(conn, struct.unpack("!H", head)[0])
                if not msg:
                    break
                reply, what = answer(msg, name, ipv4, ttl)
                conn.sendall(struct.pack("!H", len(reply)) + reply)
                if log:
                    log.write("%s %d %d %d\n" % what)


def main():
    addr, port, name, ipv4, ttl = sys.argv[1], int(sys.argv[2]), sys.argv[3].lower(), \
        sys.argv[4], int(sys.argv[5])
    log = open(sys.argv[6], "a", buffering=1) if len(sys.argv) > 6 else None
    if os.environ.get("DNS_TCP") == "1":
        serve_tcp(addr, port, name, ipv4, ttl, log)
        return
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("ready", flush=True)
    while True:
        msg, peer = s.recvfrom(4096)
        try:
            reply, what = answer(msg, name, ipv4, ttl)
            s.sendto(reply, peer)
        except (IndexError, struct.error):
            continue
        if log:
            log.write("%s %d %d %d\n" % what)


if __name__ == "__main__":
    main()
