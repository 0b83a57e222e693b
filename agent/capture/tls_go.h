/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Go crypto/tls: finds crypto/tls.(*Conn).Write and (*Conn).Read in a Go
 * executable's symbol table, decodes each function's machine code to find
 * its RET instructions, and attaches the programs of bpf/tls_go.bpf.h at the
 * entry and at every RET (never uretprobes: Go moves goroutine stacks).
 * Called by tls.c for each executable it looks at, once per file (device and
 * inode), so every process running that file is covered. Part of the capture
 * stage; never on the hot path.
 *
 * Covered: Go >= 1.18 on x86-64 and arm64 (the register ABI; the version is
 * read from the .go.buildinfo section). Left out and counted: stripped Go
 * executables that use crypto/tls (no .symtab), older or unknown versions,
 * functions whose code does not decode.
 *
 * The handshake functions are probed too (entry and RETs, once per connection): the
 * handshake may read the peer's first records, and the Read that returns them needs the socket
 * the handshake learnt.
 *
 * Bounded: TLS_GO_BINS_MAX executables probed, TLS_GO_RETS_MAX RETs per function.
 */
#ifndef MESHTRACE_CAPTURE_TLS_GO_H
#define MESHTRACE_CAPTURE_TLS_GO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_GO_BINS_MAX 128 /* Go executables with probes attached */
#define TLS_GO_RETS_MAX 32  /* RET instructions probed per function */

struct bpf_program;

struct tls_go_programs {
	struct bpf_program *write_entry;
	struct bpf_program *read_entry;
	struct bpf_program *ret;
	struct bpf_program *handshake_entry; /* clientHandshake and serverHandshake */
	struct bpf_program *handshake_ret;
	volatile unsigned long long *used; /* the object's switch (__u64): set once one is probed */
};

struct tls_go_stats {
	uint64_t binaries_attached; /* Go executables with probes on Write and Read */
	uint64_t stripped;    /* Go executables using crypto/tls without a symbol table: left out */
	uint64_t old_version; /* Go older than 1.18, or its version unreadable: left out */
	uint64_t decode_failed; /* Write/Read whose code did not decode to its end: left out */
	uint64_t attach_failed; /* the kernel refused a probe, or TLS_GO_BINS_MAX reached */
};

/* What one executable is, for crypto/tls. */
enum tls_go_kind {
	TLS_GO_NOT_GO = 0,   /* not a Go executable, or one that does not use crypto/tls */
	TLS_GO_ATTACHED = 1, /* probes on Write and Read */
	TLS_GO_STRIPPED = 2, /* uses crypto/tls, no symbol table */
	TLS_GO_LEFT_OUT = 3, /* uses crypto/tls, not probed (version, code, kernel): counted */
};

/* One function found: where it is in the file and where its RETs are. */
struct tls_go_func {
	uint64_t offset; /* file offset of its first instruction */
	uint64_t size;
	uint32_t rets[TLS_GO_RETS_MAX]; /* offsets of the RETs from the function's start */
	int nrets;			/* -1: its code did not decode */
};

/* What tls_go_inspect() read from an executable. */
struct tls_go_info {
	bool is_go;
	bool has_symtab;
	bool uses_tls;	   /* names crypto/tls.(*Conn).Write (symbol table or pclntab) */
	int version_minor; /* N of go1.N; 0 when unknown */
	uint16_t machine;  /* EM_X86_64, EM_AARCH64, ... */
	struct tls_go_func write, read; /* valid when has_symtab && uses_tls */
	/* clientHandshake, serverHandshake: size 0 when absent (the linker drops unused ones) */
	struct tls_go_func handshake[2];
};

struct tls_go;

/* NULL on allocation failure. */
struct tls_go *tls_go__new(const struct tls_go_programs *p);
/* Detaches every probe; the counters stay readable. */
void tls_go_detach(struct tls_go *g);
/* Detaches every probe and frees. NULL: no-op. */
void tls_go__free(struct tls_go *g);

/*
 * Looks at the executable at @path (@name: how to call it in the log) and
 * attaches to it when it is a Go program using crypto/tls. Call once per
 * file. Returns what it is; what is left out is counted.
 */
enum tls_go_kind tls_go_look(struct tls_go *g, const char *path, const char *name);

void tls_go_read_stats(const struct tls_go *g, struct tls_go_stats *out);

/* Reads the ELF file at @path into @out. Returns 0, or -errno when it cannot be read as ELF. */
int tls_go_inspect(const char *path, struct tls_go_info *out);

/*
 * The length of the x86-64 instruction at @p (at most @n bytes readable), or
 * -1 when it is not one this decoder knows (it knows the general-purpose,
 * x87, SSE and VEX encodings a compiler emits, not EVEX or 3DNow!).
 */
int tls_go_x86_insn_len(const uint8_t *p, size_t n);

/*
 * Offsets of the RET instructions in the function @code[0..@n) of machine
 * @machine (EM_X86_64: decoded instruction by instruction from the start;
 * EM_AARCH64: the 4-byte RET words), at most @max into @rets. Returns how
 * many, or -1 when the code does not decode to its end or has more than @max.
 */
int tls_go_find_rets(const uint8_t *code, size_t n, uint16_t machine, uint32_t *rets, int max);

#endif /* MESHTRACE_CAPTURE_TLS_GO_H */
