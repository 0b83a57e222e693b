// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent/capture/tls_go.h"
#include "agent/common/log.h"

#define SYM_WRITE "crypto/tls.(*Conn).Write"
#define SYM_READ  "crypto/tls.(*Conn).Read"
static const char *const sym_handshake[2] = {"crypto/tls.(*Conn).clientHandshake",
					     "crypto/tls.(*Conn).serverHandshake"};

/* Probes per executable: one entry and up to TLS_GO_RETS_MAX RETs, for each of four functions. */
#define LINKS_PER_BIN (4 * (1 + TLS_GO_RETS_MAX))

struct tls_go_bin {
	struct bpf_link *links[LINKS_PER_BIN];
	int nlinks;
};

struct tls_go {
	struct tls_go_programs p;
	struct tls_go_bin bins[TLS_GO_BINS_MAX];
	int nbins;
	struct tls_go_stats stats;
};

struct tls_go *tls_go__new(const struct tls_go_programs *p)
{
	struct tls_go *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->p = *p;
	return g;
}

void tls_go_detach(struct tls_go *g)
{
	for (int i = 0; i < g->nbins; i++)
		for (int k = 0; k < g->bins[i].nlinks; k++) {
			bpf_link__destroy(g->bins[i].links[k]);
			g->bins[i].links[k] = NULL;
		}
}

void tls_go__free(struct tls_go *g)
{
	if (!g)
		return;
	tls_go_detach(g);
	free(g);
}

void tls_go_read_stats(const struct tls_go *g, struct tls_go_stats *out)
{
	*out = g->stats;
}

/* ---- x86-64 instruction lengths (Intel SDM vol. 2, appendix A: opcode maps) ---- */

/* The opcode tables stay one row per group of cases: clang-format would make them 200 lines. */
/* clang-format off */

/* One-byte opcodes that take a ModRM byte (64-bit mode), one bit each. */
static bool op1_modrm(uint8_t op)
{
	if (op < 0x40)
		return (op & 7) < 4; /* ALU r/m forms: 00-03, 08-0B, ... 38-3B */
	switch (op) {
	case 0x63: case 0x69: case 0x6b:
	case 0x80: case 0x81: case 0x83:
	case 0x84: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: case 0x8a: case 0x8b:
	case 0x8c: case 0x8d: case 0x8e: case 0x8f:
	case 0xc0: case 0xc1: case 0xc6: case 0xc7:
	case 0xd0: case 0xd1: case 0xd2: case 0xd3:
	case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf:
	case 0xf6: case 0xf7: case 0xfe: case 0xff:
		return true;
	default:
		return false;
	}
}

/* One-byte opcodes invalid in 64-bit mode (or EVEX, 0x62, which this decoder does not know). */
static bool op1_invalid(uint8_t op)
{
	switch (op) {
	case 0x06: case 0x07: case 0x0e: case 0x16: case 0x17: case 0x1e: case 0x1f:
	case 0x27: case 0x2f: case 0x37: case 0x3f:
	case 0x60: case 0x61: case 0x62: case 0x82: case 0x9a:
	case 0xce: case 0xd4: case 0xd5: case 0xd6: case 0xea:
		return true;
	default:
		return false;
	}
}

/*
 * Immediate bytes of one-byte opcode @op (ModRM's reg field @reg for the F6/F7 groups); @z is
 * the size of a 16/32-bit immediate, @w the REX.W bit. -1: invalid here.
 */
static int op1_imm(uint8_t op, int reg, int z, bool w, bool addr32)
{
	if (op < 0x40 && (op & 7) == 4)
		return 1;
	if (op < 0x40 && (op & 7) == 5)
		return z;
	if (op >= 0x70 && op <= 0x7f)
		return 1;
	if (op >= 0xb0 && op <= 0xb7)
		return 1;
	if (op >= 0xb8 && op <= 0xbf)
		return w ? 8 : z;
	if (op >= 0xa0 && op <= 0xa3)
		return addr32 ? 4 : 8; /* moffs */
	switch (op) {
	case 0x68: case 0x69: case 0x81: case 0xa9: case 0xc7:
		return z;
	case 0x6a: case 0x6b: case 0x80: case 0x83: case 0xa8: case 0xc0: case 0xc1: case 0xc6:
	case 0xcd: case 0xe0: case 0xe1: case 0xe2: case 0xe3: case 0xe4: case 0xe5: case 0xe6:
	case 0xe7: case 0xeb:
		return 1;
	case 0xc2: case 0xca:
		return 2;
	case 0xc8:
		return 3;
	case 0xe8: case 0xe9:
		return 4;
	case 0xf6:
		return reg < 2 ? 1 : 0;
	case 0xf7:
		return reg < 2 ? z : 0;
	default:
		return 0;
	}
}

/* Two-byte opcodes (0F xx) without a ModRM byte. */
static bool op2_no_modrm(uint8_t op)
{
	if (op >= 0x80 && op <= 0x8f) /* Jcc rel32 */
		return true;
	if (op >= 0xc8 && op <= 0xcf) /* BSWAP */
		return true;
	switch (op) {
	case 0x05: case 0x06: case 0x07: case 0x08: case 0x09: case 0x0b: case 0x0e:
	case 0x30: case 0x31: case 0x32: case 0x33: case 0x34: case 0x35: case 0x37:
	case 0x77: case 0xa0: case 0xa1: case 0xa2: case 0xa8: case 0xa9: case 0xaa:
		return true;
	default:
		return false;
	}
}

/* Immediate bytes of two-byte opcode 0F @op (after its ModRM, if any). */
static int op2_imm(uint8_t op)
{
	if (op >= 0x80 && op <= 0x8f)
		return 4;
	switch (op) {
	case 0x70: case 0x71: case 0x72: case 0x73: case 0xa4: case 0xac: case 0xba: case 0xc2:
	case 0xc4: case 0xc5: case 0xc6:
		return 1;
	default:
		return 0;
	}
}

/* clang-format on */

/* Bytes of a ModRM byte and what follows it (SIB, displacement) at @p; -1 when cut short. */
static int modrm_len(const uint8_t *p, size_t n)
{
	int mod, rm, len = 1;

	if (n < 1)
		return -1;
	mod = p[0] >> 6;
	rm = p[0] & 7;
	if (mod == 3)
		return 1;
	if (rm == 4) { /* SIB */
		if (n < 2)
			return -1;
		len++;
		if (mod == 0 && (p[1] & 7) == 5)
			len += 4;
	} else if (mod == 0 && rm == 5) { /* RIP-relative */
		len += 4;
	}
	if (mod == 1)
		len += 1;
	else if (mod == 2)
		len += 4;
	return (size_t)len <= n ? len : -1;
}

int tls_go_x86_insn_len(const uint8_t *p, size_t n)
{
	size_t i = 0;
	bool opsize16 = false, addr32 = false, w = false;
	int z, m, imm, map = 0; /* 0: one-byte map, 1: 0F, 2: 0F 38, 3: 0F 3A */
	bool has_modrm;
	uint8_t op;

	/* Legacy prefixes (at most 14 bytes in all, per the SDM's 15-byte limit). */
	while (i < n && i < 14) {
		uint8_t b = p[i];

		if (b == 0x66)
			opsize16 = true;
		else if (b == 0x67)
			addr32 = true;
		else if (!(b == 0xf0 || b == 0xf2 || b == 0xf3 || b == 0x2e || b == 0x36 ||
			   b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65))
			break;
		i++;
	}
	if (i < n && (p[i] & 0xf0) == 0x40) { /* REX */
		w = p[i] & 8;
		i++;
	}
	if (i >= n)
		return -1;
	op = p[i++];
	if (op == 0xc4 || op == 0xc5) { /* VEX: map from its payload, then opcode + ModRM */
		if (op == 0xc5) {
			map = 1;
			i += 1;
		} else {
			if (i >= n)
				return -1;
			map = p[i] & 0x1f;
			i += 2;
		}
		if (map < 1 || map > 3 || i >= n)
			return -1;
		op = p[i++];
		if (map == 1 && op == 0x77) /* VZEROUPPER/VZEROALL */
			return (int)i;
		m = modrm_len(p + i, n - i);
		if (m < 0)
			return -1;
		i += m;
		imm = map == 3 ? 1 : map == 1 ? op2_imm(op) : 0;
		return i + imm <= n ? (int)(i + imm) : -1;
	}
	z = opsize16 && !w ? 2 : 4;
	if (op == 0x0f) {
		if (i >= n)
			return -1;
		op = p[i++];
		if (op == 0x38 || op == 0x3a) {
			map = op == 0x38 ? 2 : 3;
			if (i >= n)
				return -1;
			op = p[i++];
		} else {
			map = 1;
		}
		if (map == 1 &&
		    (op == 0x0f || op == 0x04 || op == 0x0a || op == 0x0c || op == 0x24 ||
		     op == 0x25 || op == 0x26 || op == 0x27 || op == 0x36 || op == 0x39 ||
		     op == 0x3b || op == 0x3c || op == 0x3d || op == 0x3e || op == 0x3f))
			return -1; /* 3DNow!, reserved */
		has_modrm = map != 1 || !op2_no_modrm(op);
		imm = map == 3 ? 1 : map == 2 ? 0 : op2_imm(op);
	} else {
		if (op1_invalid(op))
			return -1;
		has_modrm = op1_modrm(op);
		imm = 0; /* below: F6/F7 need the ModRM's reg field */
	}
	if (has_modrm) {
		if (i >= n)
			return -1;
		if (map == 0)
			imm = op1_imm(op, (p[i] >> 3) & 7, z, w, addr32);
		m = modrm_len(p + i, n - i);
		if (m < 0)
			return -1;
		i += m;
	} else if (map == 0) {
		imm = op1_imm(op, 0, z, w, addr32);
	}
	if (imm < 0 || i + imm > n)
		return -1;
	return (int)(i + imm);
}

/* True for a RET at @p: C3 or C2 iw, after any legacy prefixes (F3 C3, "rep ret"). */
static bool x86_is_ret(const uint8_t *p, int len)
{
	int k = 0;

	while (k < len - 1 && (p[k] == 0xf3 || p[k] == 0xf2 || p[k] == 0x66))
		k++;
	return p[k] == 0xc3 || (p[k] == 0xc2 && len - k == 3);
}

int tls_go_find_rets(const uint8_t *code, size_t n, uint16_t machine, uint32_t *rets, int max)
{
	int found = 0;

	if (machine == EM_AARCH64) {
		for (size_t off = 0; off + 4 <= n; off += 4) {
			uint32_t insn = (uint32_t)code[off] | (uint32_t)code[off + 1] << 8 |
					(uint32_t)code[off + 2] << 16 |
					(uint32_t)code[off + 3] << 24;

			if (insn != 0xd65f03c0u) /* RET (X30) */
				continue;
			if (found >= max)
				return -1;
			rets[found++] = (uint32_t)off;
		}
		return found;
	}
	if (machine != EM_X86_64)
		return -1;
	for (size_t off = 0; off < n;) {
		int len = tls_go_x86_insn_len(code + off, n - off);

		if (len <= 0)
			return -1;
		if (x86_is_ret(code + off, len)) {
			if (found >= max)
				return -1;
			rets[found++] = (uint32_t)off;
		}
		off += (size_t)len;
	}
	return found;
}

/* ---- the ELF file ---- */

/* Go's version from the .go.buildinfo section (Go >= 1.18: the string inline): N of go1.N, or 0. */
static int buildinfo_minor(const uint8_t *d, size_t n)
{
	static const char magic[] = "\xff Go buildinf:";
	uint64_t len = 0;
	size_t i = 32;
	char ver[64];
	const char *at;

	if (n < 33 || memcmp(d, magic, 14) != 0 || !(d[15] & 2))
		return 0;
	for (int shift = 0; i < n && shift < 63; shift += 7) { /* uvarint */
		len |= (uint64_t)(d[i] & 0x7f) << shift;
		if (!(d[i++] & 0x80))
			break;
	}
	if (!len || len >= sizeof(ver) || i + len > n)
		return 0;
	memcpy(ver, d + i, len);
	ver[len] = '\0';
	at = strstr(ver, "go1.");
	return at ? (int)strtol(at + 4, NULL, 10) : 0;
}

/* Finds symbol @name of the function into @f (offset, size, RETs); false when absent. */
static bool find_func(Elf *e, Elf_Scn *symscn, const GElf_Shdr *symsh, const char *name,
		      uint16_t machine, struct tls_go_func *f)
{
	Elf_Data *d = elf_getdata(symscn, NULL);
	size_t n;

	if (!d || !symsh->sh_entsize)
		return false;
	n = symsh->sh_size / symsh->sh_entsize;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym sym;
		GElf_Shdr sh;
		Elf_Scn *text;
		Elf_Data *td;
		const char *s;
		uint64_t at;

		if (!gelf_getsym(d, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
		    sym.st_shndx == SHN_UNDEF || !sym.st_size)
			continue;
		s = elf_strptr(e, symsh->sh_link, sym.st_name);
		if (!s || strcmp(s, name) != 0)
			continue;
		text = elf_getscn(e, sym.st_shndx);
		if (!text || !gelf_getshdr(text, &sh) || sh.sh_type != SHT_PROGBITS)
			return false;
		td = elf_getdata(text, NULL);
		at = sym.st_value - sh.sh_addr;
		if (!td || sym.st_value < sh.sh_addr || at + sym.st_size > td->d_size)
			return false;
		f->offset = sh.sh_offset + at;
		f->size = sym.st_size;
		f->nrets = tls_go_find_rets((const uint8_t *)td->d_buf + at, sym.st_size, machine,
					    f->rets, TLS_GO_RETS_MAX);
		return true;
	}
	return false;
}

static void inspect_elf(Elf *e, struct tls_go_info *out)
{
	Elf_Scn *scn = NULL, *symscn = NULL;
	GElf_Shdr symsh;
	GElf_Ehdr eh;
	size_t shstrndx;

	if (!gelf_getehdr(e, &eh) || elf_getshdrstrndx(e, &shstrndx) != 0)
		return;
	out->machine = eh.e_machine;
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(e, shstrndx, sh.sh_name);
		if (!name)
			continue;
		if (sh.sh_type == SHT_SYMTAB) {
			symscn = scn;
			symsh = sh;
			out->has_symtab = true;
		} else if (strcmp(name, ".gopclntab") == 0 ||
			   strcmp(name, ".note.go.buildid") == 0) {
			out->is_go = true;
		} else if (strcmp(name, ".go.buildinfo") == 0) {
			Elf_Data *d = elf_getdata(scn, NULL);

			out->is_go = true;
			if (d && d->d_buf)
				out->version_minor = buildinfo_minor(d->d_buf, d->d_size);
		}
	}
	if (!out->is_go)
		return;
	if (symscn) {
		bool w = find_func(e, symscn, &symsh, SYM_WRITE, out->machine, &out->write);
		bool r = find_func(e, symscn, &symsh, SYM_READ, out->machine, &out->read);

		out->uses_tls = w && r;
		for (int k = 0; k < 2; k++)
			find_func(e, symscn, &symsh, sym_handshake[k], out->machine,
				  &out->handshake[k]);
	} else {
		/* Stripped: the function names are still in the pclntab, somewhere in the file. */
		size_t n = 0;
		const char *raw = elf_rawfile(e, &n);

		out->uses_tls = raw && memmem(raw, n, SYM_WRITE, strlen(SYM_WRITE)) != NULL;
	}
}

int tls_go_inspect(const char *path, struct tls_go_info *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf *e;

	memset(out, 0, sizeof(*out));
	if (fd < 0)
		return -errno;
	if (elf_version(EV_CURRENT) == EV_NONE) {
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
	inspect_elf(e, out);
	elf_end(e);
	close(fd);
	return 0;
}

/* One uprobe at file offset @off of @path into @bin; -errno on failure. */
static int attach_at(struct tls_go_bin *bin, struct bpf_program *prog, const char *path,
		     uint64_t off)
{
	struct bpf_link *l;

	if (bin->nlinks >= LINKS_PER_BIN)
		return -ENOSPC;
	l = bpf_program__attach_uprobe_opts(prog, -1, path, off, NULL);
	if (!l)
		return -errno;
	bin->links[bin->nlinks++] = l;
	return 0;
}

static int attach_func(struct tls_go_bin *bin, struct bpf_program *entry, struct bpf_program *ret,
		       const char *path, const struct tls_go_func *f)
{
	int err = attach_at(bin, entry, path, f->offset);

	for (int k = 0; !err && k < f->nrets; k++)
		err = attach_at(bin, ret, path, f->offset + f->rets[k]);
	return err;
}

enum tls_go_kind tls_go_look(struct tls_go *g, const char *path, const char *name)
{
	struct tls_go_info info;
	struct tls_go_bin *bin;
	int err;

	if (tls_go_inspect(path, &info) != 0 || !info.is_go || !info.uses_tls)
		return TLS_GO_NOT_GO;
	if (!info.has_symtab) {
		g->stats.stripped++;
		mt_info("TLS: Go program %s has no symbol table: its crypto/tls is not probed",
			name);
		return TLS_GO_STRIPPED;
	}
	if (info.version_minor < 18) {
		g->stats.old_version++;
		mt_info("TLS: Go program %s: version before 1.18 or unknown: not probed", name);
		return TLS_GO_LEFT_OUT;
	}
	if (info.write.nrets <= 0 || info.read.nrets <= 0) {
		g->stats.decode_failed++;
		mt_warn("TLS: Go program %s: the RETs of crypto/tls Write/Read were not found",
			name);
		return TLS_GO_LEFT_OUT;
	}
	if (g->nbins >= TLS_GO_BINS_MAX) {
		g->stats.attach_failed++;
		return TLS_GO_LEFT_OUT;
	}
	bin = &g->bins[g->nbins];
	memset(bin, 0, sizeof(*bin));
	err = attach_func(bin, g->p.write_entry, g->p.ret, path, &info.write);
	if (!err)
		err = attach_func(bin, g->p.read_entry, g->p.ret, path, &info.read);
	for (int k = 0; k < 2 && !err; k++)
		if (info.handshake[k].size && info.handshake[k].nrets > 0)
			err = attach_func(bin, g->p.handshake_entry, g->p.handshake_ret, path,
					  &info.handshake[k]);
	if (err) {
		for (int k = 0; k < bin->nlinks; k++)
			bpf_link__destroy(bin->links[k]);
		bin->nlinks = 0;
		g->stats.attach_failed++;
		mt_warn("TLS: cannot attach to Go program %s: %s", name, strerror(-err));
		return TLS_GO_LEFT_OUT;
	}
	g->nbins++;
	g->stats.binaries_attached++;
	*g->p.used = 1;
	mt_info("TLS: probes on Go program %s (go1.%d; %d probes: Write %d RETs, Read %d RETs)",
		name, info.version_minor, bin->nlinks, info.write.nrets, info.read.nrets);
	return TLS_GO_ATTACHED;
}
