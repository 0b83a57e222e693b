// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/capture/tls.h"
#include "agent/common/log.h"

/* The symbols probed, by enum mt_tls_fn. */
static const char *const fn_names[MT_TLS_FN__MAX] = {
	[MT_TLS_FN_READ] = "SSL_read",
	[MT_TLS_FN_WRITE] = "SSL_write",
	[MT_TLS_FN_READ_EX] = "SSL_read_ex",
	[MT_TLS_FN_WRITE_EX] = "SSL_write_ex",
};

#define READ_FNS  (1 << MT_TLS_FN_READ | 1 << MT_TLS_FN_READ_EX)
#define WRITE_FNS (1 << MT_TLS_FN_WRITE | 1 << MT_TLS_FN_WRITE_EX)

enum file_state {
	FILE_EMPTY = 0,	    /* free slot */
	FILE_ATTACHED = 1,  /* probes on it */
	FILE_NOT_TLS = 2,   /* no SSL_* functions in it */
	FILE_FAILED = 3,    /* unreadable, or the kernel refused the probes */
	FILE_NO_SYMTAB = 4, /* an executable without a symbol table: nothing to find */
};

struct tls_file {
	uint64_t dev;
	uint64_t ino;
	uint8_t state; /* enum file_state */
};

struct tls_lib {
	struct bpf_link *links[2 * MT_TLS_FN__MAX];
};

struct exec_wait {
	uint32_t pid;
	uint64_t due_ns;
};

/* Exec'd processes waiting, in due order (one delay per ring). */
struct exec_ring {
	struct exec_wait w[TLS_EXEC_QUEUE];
	uint32_t head, len;
};

struct tls_attach {
	struct tls_programs p;
	struct tls_file files[TLS_FILES_MAX];
	uint32_t nfiles;
	struct tls_lib libs[TLS_LIBS_MAX];
	uint32_t nlibs;
	struct exec_ring soon;		 /* first look, TLS_EXEC_DELAY_NS after the exec */
	struct exec_ring late;		 /* second look, for libraries opened later */
	uint32_t recent[TLS_RECENT_MAX]; /* pids a handshake sent us to */
	uint32_t recent_next;
	uint32_t stripped[TLS_RECENT_MAX]; /* pids whose executable had no symbol table at exec */
	uint32_t stripped_next;
	struct tls_stats stats;
	bool detached;	       /* no more probes: looks at processes are pointless */
	uint64_t sweep_due_ns; /* the next look for calls of dead threads */
	/* Where each table's look stopped (tls_calls, tls_go_calls): the next one goes on there. */
	union tls_call_key {
		uint64_t pid_tgid;
		struct mt_tls_go_key go;
	} sweep_at[2];
	bool sweep_from[2]; /* sweep_at[i] is set; else the next look starts at the first key */
	/* Go executables; NULL when out of memory */
	struct tls_go *go;
};

/* What one look at a process's mappings found. */
struct scan_result {
	bool covered;	    /* a probed file is mapped */
	bool exe_no_symtab; /* its executable has no symbol table */
};

struct tls_attach *tls_attach__new(const struct tls_programs *p)
{
	struct tls_attach *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->p = *p;
	t->go = tls_go__new(&p->go);
	return t;
}

void tls_detach(struct tls_attach *t)
{
	for (uint32_t i = 0; i < t->nlibs; i++)
		for (int k = 0; k < 2 * MT_TLS_FN__MAX; k++) {
			bpf_link__destroy(t->libs[i].links[k]);
			t->libs[i].links[k] = NULL;
		}
	if (t->go)
		tls_go_detach(t->go);
	t->detached = true;
}

void tls_attach__free(struct tls_attach *t)
{
	if (!t)
		return;
	tls_detach(t);
	tls_go__free(t->go);
	free(t);
}

/* The slot of file (@dev, @ino): its own, or the free one it would take; NULL when full. */
static struct tls_file *file_slot(struct tls_attach *t, uint64_t dev, uint64_t ino)
{
	uint32_t h = (uint32_t)((ino * 0x9e3779b97f4a7c15ull) ^ dev) & (TLS_FILES_MAX - 1);

	for (uint32_t k = 0; k < TLS_FILES_MAX; k++) {
		struct tls_file *f = &t->files[(h + k) & (TLS_FILES_MAX - 1)];

		if (f->state == FILE_EMPTY || (f->dev == dev && f->ino == ino))
			return f;
	}
	return NULL;
}

/* Which SSL_* functions a symbol table section defines, into @mask. */
static void scan_symbols(Elf *e, Elf_Scn *scn, const GElf_Shdr *sh, int *mask)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	size_t n;

	if (!d || !sh->sh_entsize)
		return;
	n = sh->sh_size / sh->sh_entsize;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym sym;
		const char *name;

		if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF || !sym.st_value ||
		    GELF_ST_TYPE(sym.st_info) != STT_FUNC)
			continue;
		name = elf_strptr(e, sh->sh_link, sym.st_name);
		if (!name || strncmp(name, "SSL_", 4) != 0)
			continue;
		for (int k = 0; k < MT_TLS_FN__MAX; k++)
			if (strcmp(name, fn_names[k]) == 0)
				*mask |= 1 << k;
	}
}

int tls_elf_functions(const char *path, bool *has_symtab)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf_Scn *scn = NULL;
	int mask = 0;
	Elf *e;

	*has_symtab = false;
	if (fd < 0)
		return -errno;
	if (elf_version(EV_CURRENT) ==
	    EV_NONE) { /* libelf's handshake: once is enough, again is cheap */
		close(fd);
		return -ENOTSUP;
	}
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF) {
		if (e)
			elf_end(e);
		close(fd);
		return -ENOEXEC;
	}
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB)
			*has_symtab = true;
		if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM)
			scan_symbols(e, scn, &sh, &mask);
	}
	elf_end(e);
	close(fd);
	return mask;
}

/* Attaches entry and return probes to the functions in @mask of the file at @path. */
static int attach_file(struct tls_attach *t, const char *path, int mask)
{
	struct tls_lib *lib;
	int err = 0, n = 0;

	if (t->nlibs >= TLS_LIBS_MAX)
		return -ENOSPC;
	lib = &t->libs[t->nlibs];
	memset(lib, 0, sizeof(*lib));
	for (int k = 0; k < MT_TLS_FN__MAX; k++) {
		LIBBPF_OPTS(bpf_uprobe_opts, entry, .func_name = fn_names[k]);
		LIBBPF_OPTS(bpf_uprobe_opts, ret, .func_name = fn_names[k], .retprobe = true);

		if (!(mask & 1 << k))
			continue;
		lib->links[n] = bpf_program__attach_uprobe_opts(t->p.entry[k], -1, path, 0, &entry);
		if (!lib->links[n]) {
			err = -errno;
			break;
		}
		n++;
		lib->links[n] = bpf_program__attach_uprobe_opts(t->p.ret, -1, path, 0, &ret);
		if (!lib->links[n]) {
			err = -errno;
			break;
		}
		n++;
	}
	if (err) {
		for (int k = 0; k < n; k++)
			bpf_link__destroy(lib->links[k]);
		return err;
	}
	t->nlibs++;
	*t->p.tls_used = 1;
	return 0;
}

/* True for a libssl.so or libssl.so.N file name (not NSS's libssl3.so). */
static bool is_libssl(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return strncmp(base, "libssl.so", 9) == 0 && (base[9] == '\0' || base[9] == '.');
}

/* What a Go executable's look (tls_go_look) makes of the file; @st: what it was otherwise. */
static enum file_state go_file_state(enum tls_go_kind k, enum file_state st)
{
	switch (k) {
	case TLS_GO_ATTACHED:
		return FILE_ATTACHED;
	case TLS_GO_STRIPPED:
		return FILE_NO_SYMTAB;
	case TLS_GO_LEFT_OUT:
		return FILE_FAILED;
	default:
		return st;
	}
}

/*
 * Looks at one mapped file of process @pid and attaches to it if it holds SSL_* functions.
 * @exe: it is the process's executable. Returns the file's state.
 */
static enum file_state look_at_file(struct tls_attach *t, uint32_t pid, uint64_t dev, uint64_t ino,
				    const char *mpath, const char *range, bool exe)
{
	struct tls_file *f = file_slot(t, dev, ino);
	enum file_state st;
	char path[4096 + 64];
	bool symtab;
	int mask, rc;

	if (f && f->state != FILE_EMPTY)
		return (enum file_state)f->state;
	snprintf(path, sizeof(path), "/proc/%u/root%s", pid, mpath);
	if (access(path, R_OK) != 0)
		snprintf(path, sizeof(path), "/proc/%u/map_files/%s", pid, range);
	mask = tls_elf_functions(path, &symtab);
	if (mask < 0) {
		st = FILE_FAILED;
	} else if ((mask & READ_FNS) && (mask & WRITE_FNS)) {
		rc = attach_file(t, path, mask);
		if (rc == 0) {
			st = FILE_ATTACHED;
			t->stats.libraries_attached++;
			mt_info("TLS: probes on %s (pid %u)", mpath, pid);
		} else {
			st = FILE_FAILED;
			t->stats.attach_failed++;
			mt_warn("TLS: cannot attach to %s (pid %u): %s", mpath, pid, strerror(-rc));
		}
	} else {
		st = exe && !symtab ? FILE_NO_SYMTAB : FILE_NOT_TLS;
		if (exe && t->go)
			st = go_file_state(tls_go_look(t->go, path, mpath), st);
	}
	if (f) {
		f->dev = dev;
		f->ino = ino;
		f->state = st;
		t->nfiles++;
	} else {
		t->stats.files_full++;
	}
	return st;
}

/* One line of /proc/PID/maps: its address range, device, inode and path. */
static bool parse_maps_line(char *line, char **range, uint64_t *dev, uint64_t *ino, char **path,
			    bool *exec)
{
	unsigned maj, min;
	char perms[8];
	unsigned long long inode;
	int off = 0;
	char *dash;

	if (sscanf(line, "%*s %7s %*s %x:%x %llu %n", perms, &maj, &min, &inode, &off) != 4 || !off)
		return false;
	if (!inode || line[off] != '/')
		return false;
	*exec = perms[2] == 'x';
	*dev = (uint64_t)maj << 32 | min;
	*ino = inode;
	*path = line + off;
	(*path)[strcspn(*path, "\n")] = '\0';
	if (strstr(*path, " (deleted)"))
		return false;
	dash = strchr(line, ' ');
	if (!dash)
		return false;
	*dash = '\0';
	*range = line;
	return true;
}

static void scan_pid(struct tls_attach *t, uint32_t pid, struct scan_result *res)
{
	char maps[64], exe_link[64], exe[4096];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	memset(res, 0, sizeof(*res));
	if (t->detached || pid == (uint32_t)getpid())
		return;
	snprintf(maps, sizeof(maps), "/proc/%u/maps", pid);
	snprintf(exe_link, sizeof(exe_link), "/proc/%u/exe", pid);
	n = readlink(exe_link, exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	f = fopen(maps, "re");
	if (!f)
		return;
	t->stats.processes_scanned++;
	while (getline(&line, &cap, f) > 0) {
		char *range, *path;
		uint64_t dev, ino;
		bool exec, is_exe;
		enum file_state st;

		if (!parse_maps_line(line, &range, &dev, &ino, &path, &exec) || !exec)
			continue;
		is_exe = exe[0] && strcmp(path, exe) == 0;
		if (!is_exe && !is_libssl(path))
			continue;
		st = look_at_file(t, pid, dev, ino, path, range, is_exe);
		if (st == FILE_ATTACHED)
			res->covered = true;
		if (is_exe && st == FILE_NO_SYMTAB)
			res->exe_no_symtab = true;
	}
	free(line);
	fclose(f);
}

void tls_scan_all(struct tls_attach *t)
{
	struct scan_result res;
	struct dirent *de;
	DIR *d = opendir("/proc");

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char *end;
		unsigned long pid = strtoul(de->d_name, &end, 10);

		if (*end || !pid)
			continue;
		scan_pid(t, (uint32_t)pid, &res);
	}
	closedir(d);
}

void tls_on_handshake(struct tls_attach *t, uint32_t pid)
{
	struct scan_result res;

	if (!pid)
		return;
	for (uint32_t i = 0; i < TLS_RECENT_MAX; i++)
		if (t->recent[i] == pid)
			return;
	t->recent[t->recent_next++ % TLS_RECENT_MAX] = pid;
	scan_pid(t, pid, &res);
	if (res.covered)
		return;
	t->stats.uncovered_procs++;
	/* Remembered at exec too: a short-lived process may be gone by the time of this look. */
	for (uint32_t i = 0; i < TLS_RECENT_MAX && !res.exe_no_symtab; i++)
		if (t->stripped[i] == pid)
			res.exe_no_symtab = true;
	if (res.exe_no_symtab)
		t->stats.no_symbols++;
}

static bool ring_push(struct tls_attach *t, struct exec_ring *r, uint32_t pid, uint64_t due_ns)
{
	if (r->len >= TLS_EXEC_QUEUE) {
		t->stats.exec_queue_full++;
		return false;
	}
	r->w[(r->head + r->len++) % TLS_EXEC_QUEUE] = (struct exec_wait){pid, due_ns};
	return true;
}

/* The next process of @r due by @now_ns, taken out of it; 0 when none is. */
static uint32_t ring_pop_due(struct exec_ring *r, uint64_t now_ns)
{
	uint32_t pid;

	if (!r->len || r->w[r->head].due_ns > now_ns)
		return 0;
	pid = r->w[r->head].pid;
	r->head = (r->head + 1) % TLS_EXEC_QUEUE;
	r->len--;
	return pid;
}

void tls_on_exec(struct tls_attach *t, uint32_t pid, uint64_t now_ns)
{
	struct scan_result res;

	/*
	 * The executable is mapped at exec: a look now attaches a static OpenSSL at once and
	 * remembers a stripped executable while the process still exists.
	 */
	scan_pid(t, pid, &res);
	for (uint32_t i = 0; i < TLS_RECENT_MAX; i++)
		if (t->stripped[i] == pid)
			t->stripped[i] = 0;
	if (res.exe_no_symtab)
		t->stripped[t->stripped_next++ % TLS_RECENT_MAX] = pid;
	ring_push(t, &t->soon, pid, now_ns + TLS_EXEC_DELAY_NS);
	/* A new program: a handshake of it is worth a look again. */
	for (uint32_t i = 0; i < TLS_RECENT_MAX; i++)
		if (t->recent[i] == pid)
			t->recent[i] = 0;
}

/* True when thread @tid of process @tgid (@tid 0: the process) is gone. */
static bool thread_gone(uint32_t tgid, uint32_t tid)
{
	long rc = tid ? syscall(SYS_tgkill, (pid_t)tgid, (pid_t)tid, 0) : kill((pid_t)tgid, 0);

	/* EPERM: it exists, and the agent may not signal it. */
	return rc != 0 && errno == ESRCH;
}

/* TLS calls in flight on the node; @procs (optional): the slots with one (~processes). */
static uint64_t calls_live(const struct tls_attach *t, uint64_t *procs)
{
	uint64_t sum = 0, n = 0;

	for (uint32_t i = 0; t->p.calls_by_proc && i < MT_TLS_PROC_SLOTS; i++) {
		uint32_t v = __atomic_load_n(&t->p.calls_by_proc[i], __ATOMIC_RELAXED);

		sum += v;
		n += v != 0;
	}
	if (procs)
		*procs = n;
	return sum;
}

/*
 * Takes out of @fd (tls_calls when @go is false, else tls_go_calls) the calls whose thread
 * (goroutine: process) is gone: an entry whose return never came would keep the data path
 * looking calls up for good for its process (tls_calls_by_proc). Only a delete that finds the
 * entry counts it down, as the return probe does, so the two cannot both count one call. A
 * look covers at most TLS_SWEEP_SCAN entries, a syscall each, and the next goes on after the
 * last live one it saw (from the first key again once the end is reached, or when that call
 * has ended since).
 */
static void sweep_map(struct tls_attach *t, int fd, bool go)
{
	union tls_call_key prev = t->sweep_at[go], next, gone[TLS_SWEEP_MAX];
	bool have_prev = t->sweep_from[go];
	uint32_t n = 0, seen = 0;

	if (fd < 0)
		return;
	while (seen < TLS_SWEEP_SCAN && n < TLS_SWEEP_MAX &&
	       bpf_map_get_next_key(fd, have_prev ? &prev : NULL, &next) == 0) {
		bool dead =
			go ? thread_gone(next.go.tgid, 0)
			   : thread_gone((uint32_t)(next.pid_tgid >> 32), (uint32_t)next.pid_tgid);

		if (dead) {
			gone[n++] = next;
		} else {
			/* The next look resumes after a key that stays: one deleted would restart it. */
			t->sweep_at[go] = next;
			t->sweep_from[go] = true;
		}
		prev = next;
		have_prev = true;
		seen++;
	}
	if (seen < TLS_SWEEP_SCAN && n < TLS_SWEEP_MAX)
		t->sweep_from[go] = false; /* the end: the next look starts over */
	for (uint32_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, &gone[i]) == 0) {
			uint32_t tgid = go ? gone[i].go.tgid : (uint32_t)(gone[i].pid_tgid >> 32);

			__atomic_fetch_sub(&t->p.calls_by_proc[tgid & MT_TLS_PROC_MASK], 1,
					   __ATOMIC_RELAXED);
			t->stats.calls_swept++;
		}
}

static void tls_sweep(struct tls_attach *t)
{
	if (!calls_live(t, NULL))
		return;
	sweep_map(t, t->p.calls_fd, false);
	sweep_map(t, t->p.go_calls_fd, true);
}

void tls_tick(struct tls_attach *t, uint64_t now_ns)
{
	if (now_ns >= t->sweep_due_ns) {
		t->sweep_due_ns = now_ns + TLS_SWEEP_NS;
		tls_sweep(t);
	}
	for (int k = 0; k < TLS_SCANS_PER_TICK; k++) {
		struct scan_result res;
		uint32_t pid = ring_pop_due(&t->soon, now_ns);
		bool first = pid != 0;

		if (!pid)
			pid = ring_pop_due(&t->late, now_ns);
		if (!pid)
			return;
		scan_pid(t, pid, &res);
		/* Libraries opened later (dlopen, Python's ssl at import): one more look. */
		if (first && !res.covered)
			ring_push(t, &t->late, pid, now_ns + TLS_EXEC_LATE_DELAY_NS);
	}
}

void tls_read_stats(const struct tls_attach *t, int ncpus, struct tls_stats *out)
{
	uint64_t vals[ncpus > 0 ? ncpus : 1];

	*out = t->stats;
	if (t->go)
		tls_go_read_stats(t->go, &out->go);
	out->calls_live = calls_live(t, &out->procs_live);
	for (uint32_t i = 0; i < MT_TLS_STAT__MAX; i++) {
		out->kernel[i] = 0;
		if (t->p.stats_fd < 0 || bpf_map_lookup_elem(t->p.stats_fd, &i, vals) != 0)
			continue;
		for (int cpu = 0; cpu < ncpus; cpu++)
			out->kernel[i] += vals[cpu];
	}
}
