# SPDX-License-Identifier: Apache-2.0
"""A tiny DNS resolver for the tests (UDP, RFC 1035 messages built by hand).
  peer_dns.py ADDR PORT NAME IPV4 TTL [LOG]
Answers NAME A with IPV4 (TTL seconds) and NAME AAAA with no record; any other name NXDOMAIN.
Prints 'ready' once bound. With LOG, appends "qname qtype rcode ancount" per answer sent."""

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


def main():
    addr, port, name, ipv4, ttl = sys.argv[1], int(sys.argv[2]), sys.argv[3].lower(), \
        sys.argv[4], int(sys.argv[5])
    log = open(sys.argv[6], "a", buffering=1) if len(sys.argv) > 6 else None
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
