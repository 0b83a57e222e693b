// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * meshtrace capture: every TCP send/recv on the node, with the first bytes of
 * its payload; the TCP state changes that open and close connections; DNS
 * answers; process exec and exit. Events go to one ring buffer (bpf/capture.h
 * is the contract with user space); nothing here needs kprobes or fentry, and
 * in the default mode every program attaches through BTF (tp_btf), so no
 * tracefs is needed either.
 *
 * One object (one skeleton), split by concern, each part included once here:
 *   arch.bpf.h       syscall numbers and where a syscall's arguments are, per architecture
 *   maps.bpf.h       tunables, maps and counters: all the kernel side keeps
 *   sockops.bpf.h    the cgroup scope; trace context in a TCP header option (sock_ops)
 *   sock.bpf.h       a socket's addresses, the payload copies, building a data event
 *   dnsproc.bpf.h    DNS datagrams; process exec and exit
 *   tls.bpf.h        plaintext at the TLS libraries' SSL_* calls (uprobes), tied to the socket
 *   tls_go.bpf.h     plaintext at Go crypto/tls (*Conn).Write/Read (entry + RET uprobes)
 *   datapath.bpf.h   TCP send/recv: sock tracepoints (default) or syscall tracepoints (fallback)
 *   lifecycle.bpf.h  connection state changes and retransmits
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "bpf/capture.h"
#include "bpf/arch.bpf.h"
#include "bpf/maps.bpf.h"
#include "bpf/sockops.bpf.h"
#include "bpf/sock.bpf.h"
#include "bpf/dnsproc.bpf.h"
#include "bpf/tls.bpf.h"
#include "bpf/tls_go.bpf.h"
#include "bpf/datapath.bpf.h"
#include "bpf/lifecycle.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
