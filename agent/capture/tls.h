/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS libraries: finds the files that hold SSL_read/SSL_write (libssl.so.*,
 * and executables with OpenSSL or BoringSSL linked in whose symbol table
 * names them) in the processes' mappings, and attaches the uprobes of
 * bpf/tls.bpf.h to each file once, by device and inode: a uprobe is on the
 * file, so every process mapping it, in any container, is covered. Files are
 * reached through /proc/PID/root (the process's own mount namespace), else
 * /proc/PID/map_files. Part of the capture stage; never on the hot path.
 *
 * Bounded: TLS_FILES_MAX files remembered (attached or not), TLS_LIBS_MAX
 * attached, TLS_EXEC_QUEUE processes waiting to be looked at; what does not
 * fit is counted.
 */
#ifndef MESHTRACE_CAPTURE_TLS_H
#define MESHTRACE_CAPTURE_TLS_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/capture/tls_go.h"
#include "bpf/capture.h"

#define TLS_FILES_MAX  4096 /* power of two: files looked at, by (device, inode) */
#define TLS_LIBS_MAX   256  /* files with probes attached */
#define TLS_EXEC_QUEUE 256  /* exec'd processes waiting for a look at their mappings */
#define TLS_RECENT_MAX 64   /* processes a handshake sent us to lately: not looked at again */
/* An exec'd process is looked at this long after its exec (the loader has mapped its libraries) and again later (dlopen). */
#define TLS_EXEC_DELAY_NS      (50ull * 1000000ull)
#define TLS_EXEC_LATE_DELAY_NS (1000ull * 1000000ull)
#define TLS_SCANS_PER_TICK     8
/* How often the calls of threads that died inside a TLS call are looked for. */
#define TLS_SWEEP_NS (1000ull * 1000000ull)
/* Per look and table: calls looked at (the next look goes on from there), calls taken out. */
#define TLS_SWEEP_SCAN 1024
#define TLS_SWEEP_MAX  256

struct tls_stats {
	uint64_t libraries_attached; /* files with probes attached */
	uint64_t attach_failed;	     /* files whose probes the kernel refused */
	uint64_t no_symbols;	     /* TLS processes whose executable has no symbol table */
	uint64_t uncovered_procs;    /* processes seen in a handshake with no library covered */
	uint64_t processes_scanned;  /* /proc/PID/maps read */
	uint64_t exec_queue_full;    /* exec'd processes not looked at: queue full */
	uint64_t files_full;	     /* files not remembered: TLS_FILES_MAX reached */
	uint64_t kernel[MT_TLS_STAT__MAX]; /* the probes' own counters (enum mt_tls_stat) */
	uint64_t calls_live;  /* SSL and Go TLS calls in flight (entry seen, return not yet) */
	uint64_t procs_live;  /* slots of tls_calls_by_proc not zero: ~processes with one */
	uint64_t calls_swept; /* calls of threads that died inside them, taken out by tls_tick() */
	/* Go executables (tls_go.h) */
	struct tls_go_stats go;
};

/* The programs of bpf/tls.bpf.h, from the loaded object. */
struct tls_programs {
	struct bpf_program *entry[MT_TLS_FN__MAX]; /* indexed by enum mt_tls_fn */
	struct bpf_program *ret;
	__u64 *tls_used; /* the object's switch: set once a library is attached */
	/*
	 * TLS calls in flight by process (the object's tls_calls_by_proc: MT_TLS_PROC_SLOTS, tgid
	 * folded) and the maps they are in, by thread (tls_calls) and by goroutine (tls_go_calls);
	 * NULL and -1 when absent.
	 */
	__u32 *calls_by_proc;
	int calls_fd;
	int go_calls_fd;
	int stats_fd; /* the tls_stats per-CPU array */
	/* Go crypto/tls (tls_go.h) */
	struct tls_go_programs go;
};

struct tls_attach;

/* NULL on allocation failure. Attaches nothing yet. */
struct tls_attach *tls_attach__new(const struct tls_programs *p);
/* Detaches every probe; the counters stay readable. */
void tls_detach(struct tls_attach *t);
/* Detaches every probe and frees. NULL: no-op. */
void tls_attach__free(struct tls_attach *t);

/* Looks at every process's mappings now (at start). */
void tls_scan_all(struct tls_attach *t);

/*
 * A process began a connection with a TLS handshake: looks at its mappings
 * now, unless it was looked at for a handshake lately. When no probed file
 * covers it, counts why (uncovered_procs; no_symbols for a stripped
 * executable).
 */
void tls_on_handshake(struct tls_attach *t, uint32_t pid);

/* A process exec'd at @now_ns: it is looked at a little later, and once more later still. */
void tls_on_exec(struct tls_attach *t, uint32_t pid, uint64_t now_ns);

/*
 * Looks at the exec'd processes that are due (at most TLS_SCANS_PER_TICK), and once per
 * TLS_SWEEP_NS takes the calls of threads that died inside a TLS call out of the kernel's
 * tables (at most TLS_SWEEP_SCAN looked at per table).
 */
void tls_tick(struct tls_attach *t, uint64_t now_ns);

void tls_read_stats(const struct tls_attach *t, int ncpus, struct tls_stats *out);

/*
 * Which of SSL_read, SSL_write, SSL_read_ex, SSL_write_ex the ELF file at
 * @path defines (bit 1 << enum mt_tls_fn), from .symtab and .dynsym. Sets
 * @has_symtab when it has a .symtab. Returns the mask, or -errno when the
 * file cannot be read as ELF.
 */
int tls_elf_functions(const char *path, bool *has_symtab);

#endif /* MESHTRACE_CAPTURE_TLS_H */
