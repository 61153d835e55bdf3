// SPDX-License-Identifier: GPL-2.0
/*
 * insn_profile: a QEMU TCG plugin that counts the guest instructions executed per translation
 * block, in windows the guest opens and closes itself (scripts/profile.sh,
 * Documentation/bench.rst "Instruction profiles").
 *
 *   -plugin insn_profile.so,mark=0xADDR,out=PREFIX
 *
 * Every execution of the block at guest virtual address ADDR (the entry of a kernel function the
 * guest calls on purpose, e.g. ksys_sync) ends a window: the counts since the previous mark are
 * written to PREFIX.N (N = 0, 1, ...) as "vaddr instructions executions" lines, one per block
 * executed in the window, and reset; a fourth column counts the block's atomic read-modify-write
 * instructions (a lock prefix, or xchg with memory), which TCG runs through helper calls, and a
 * fifth the guest memory accesses (loads and stores, each a software TLB lookup under TCG) that
 * the block's executions made in the window. A block's instructions are attributed to the
 * address it starts at; host-side tools map the addresses to symbols.
 *
 * Only the few declarations of QEMU's plugin API (version 1, QEMU 7.2) that this file uses are
 * repeated here: Debian does not ship qemu-plugin.h. The counters are inline additions (no
 * helper call per block), not atomic: a block run on two vCPUs at once may lose counts, which
 * the profiled workloads (one benchmark thread) avoid.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
					  enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
					      void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn;
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_mem_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_mem_rw rw,
					  enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

struct block {
	uint64_t vaddr;
	uint64_t execs;
	uint64_t insns;
	uint64_t atomics;
	uint64_t mem;
};

#define NBLOCKS (1u << 20)
static struct block *blocks;
static unsigned int used;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t mark;
static const char *prefix = "insn_profile";
static unsigned int window;

/* The entry of block `vaddr` (created on first sight), or NULL once the table is full. */
static struct block *block_of(uint64_t vaddr)
{
	uint64_t h = vaddr * 0x9e3779b97f4a7c15ull;
	unsigned int i = (unsigned int)(h >> 44) & (NBLOCKS - 1);

	for (unsigned int n = 0; n < NBLOCKS; n++, i = (i + 1) & (NBLOCKS - 1)) {
		if (blocks[i].vaddr == vaddr && blocks[i].insns)
			return &blocks[i];
		if (!blocks[i].insns) {
			if (used >= NBLOCKS / 2)
				return NULL;
			used++;
			blocks[i].vaddr = vaddr;
			return &blocks[i];
		}
	}
	return NULL;
}

static void dump(void)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s.%u", prefix, window++);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		return;
	}
	for (unsigned int i = 0; i < NBLOCKS; i++) {
		if (blocks[i].insns && blocks[i].execs)
			fprintf(f, "%" PRIx64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
				blocks[i].vaddr, blocks[i].insns, blocks[i].execs, blocks[i].atomics,
				blocks[i].mem);
		blocks[i].execs = 0;
		blocks[i].mem = 0;
	}
	fclose(f);
}

static void on_mark(unsigned int vcpu, void *udata)
{
	(void)vcpu;
	(void)udata;
	pthread_mutex_lock(&lock);
	dump();
	pthread_mutex_unlock(&lock);
}

/* True for an x86 instruction with a lock prefix, or an xchg with a memory operand. */
static int is_atomic(const uint8_t *p, size_t n)
{
	size_t i = 0;

	/* Legacy prefixes, then REX. */
	for (; i < n; i++) {
		if (p[i] == 0xf0)
			return 1;
		if (p[i] != 0x66 && p[i] != 0x67 && p[i] != 0xf2 && p[i] != 0xf3 && p[i] != 0x2e &&
		    p[i] != 0x3e && p[i] != 0x26 && p[i] != 0x36 && p[i] != 0x64 && p[i] != 0x65)
			break;
	}
	if (i < n && (p[i] & 0xf0) == 0x40)
		i++;
	/* xchg r/m, r (86, 87) with a memory operand (ModRM mod != 3). */
	return i + 1 < n && (p[i] == 0x86 || p[i] == 0x87) && (p[i + 1] >> 6) != 3;
}

static void on_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
	struct block *b;

	(void)id;
	pthread_mutex_lock(&lock);
	b = block_of(vaddr);
	if (b) {
		uint64_t n = qemu_plugin_tb_n_insns(tb);

		/* A block retranslated with other limits keeps one counter; the larger size counts. */
		if (n > b->insns) {
			b->insns = n;
			b->atomics = 0;
			for (size_t k = 0; k < n; k++) {
				struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, k);

				b->atomics += is_atomic(qemu_plugin_insn_data(insn), qemu_plugin_insn_size(insn));
			}
		}
		qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->execs, 1);
		/* Every access of every instruction of this translation adds one. */
		for (size_t k = 0; k < qemu_plugin_tb_n_insns(tb); k++)
			qemu_plugin_register_vcpu_mem_inline(qemu_plugin_tb_get_insn(tb, k),
							     QEMU_PLUGIN_MEM_RW,
							     QEMU_PLUGIN_INLINE_ADD_U64, &b->mem, 1);
	}
	pthread_mutex_unlock(&lock);
	if (vaddr == mark)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
}

static void at_exit_dump(qemu_plugin_id_t id, void *udata)
{
	(void)id;
	(void)udata;
	pthread_mutex_lock(&lock);
	dump();
	pthread_mutex_unlock(&lock);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
							       int argc, char **argv)
{
	(void)info;
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "mark=", 5))
			mark = strtoull(argv[i] + 5, NULL, 0);
		else if (!strncmp(argv[i], "out=", 4))
			prefix = strdup(argv[i] + 4);
		else {
			fprintf(stderr, "insn_profile: unknown argument '%s'\n", argv[i]);
			return -1;
		}
	}
	if (!mark) {
		fprintf(stderr, "insn_profile: mark=0xADDR (a guest function's entry) is required\n");
		return -1;
	}
	blocks = calloc(NBLOCKS, sizeof(*blocks));
	if (!blocks)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_trans);
	qemu_plugin_register_atexit_cb(id, at_exit_dump, NULL);
	return 0;
}
