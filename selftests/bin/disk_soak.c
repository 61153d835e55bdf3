// SPDX-License-Identifier: GPL-2.0
/*
 * disk_soak: verified block I/O against a disk, for the soak of xen_swiotlb_attach (a tool, run by
 * that test; not a test by itself).
 *
 *   disk_soak DEVICE JOBS OPS REGION_KIB SEED [MAX_SECONDS]
 *
 * JOBS processes (fork) each own REGION_KIB of DEVICE (job j: from j * REGION_KIB). The contents
 * of every 512-byte sector follow from (SEED, job, sector, version), and a job counts the versions
 * it wrote, so that any read can be checked. Each job fills its region first (256 KiB writes), then
 * makes OPS random O_DIRECT requests through Linux AIO (io_submit), in batches of 1 to QD (12)
 * requests whose ranges do not overlap: writes and reads of 4 KiB to 256 KiB in 512-byte steps at
 * 512-byte aligned offsets, from buffers at a random 512-byte offset into a page (a request starts
 * and ends inside pages, and its pages need not be contiguous). One batch in four is a burst: QD
 * requests of 256 KiB side by side, submitted at once (one plug: the driver maps them all before
 * the device completes any, 3 MiB per burst). Every read is compared with what was written; last,
 * the whole region is read back and compared. The random sequence follows from SEED (printed);
 * MAX_SECONDS (default 300) stops issuing requests, and says so.
 *
 * Prints per job and in total the requests made, bytes written, bytes read and verified,
 * mismatches and I/O errors, and a last line
 *   disk_soak: jobs J, requests N, written W, verified V, mismatches M, errors E, seconds S
 * Exit status 0 when every job finished with no mismatch and no error, 1 otherwise, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/aio_abi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECTOR 512u
#define PAGE 4096u
#define MIN_IO (4u << 10)
#define MAX_IO (256u << 10)
#define MAX_JOBS 64
#define QD 12
#define BUF (MAX_IO + PAGE)

struct job_stats {
	uint64_t requests, written, verified, mismatches, errors;
	int64_t first_bad; /* byte offset on the disk of the first mismatch, or -1 */
	int done, timed_out;
};

/* One job's state. */
struct job {
	int id, fd;
	uint64_t seed, rng;
	off_t base;
	size_t region;
	uint32_t *ver; /* per sector of the region: the version last written */
	uint8_t *scratch; /* what a read should return */
	struct job_stats *st;
};

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static uint64_t rng_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
	return lo + rng_next(s) % (hi - lo + 1);
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* The contents of len bytes at byte `at` of the job's region, at the versions in j->ver. */
static void gen(const struct job *j, uint8_t *p, size_t at, size_t len)
{
	size_t i, w;

	for (i = 0; i < len; i += SECTOR) {
		size_t sec = (at + i) / SECTOR;
		uint64_t v = j->seed ^ ((uint64_t)j->id << 48) ^ ((uint64_t)sec << 20) ^ j->ver[sec];

		for (w = 0; w < SECTOR; w += 8) {
			/* splitmix64 */
			uint64_t z = (v += 0x9E3779B97F4A7C15ULL);

			z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
			z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
			z ^= z >> 31;
			memcpy(p + i + w, &z, 8);
		}
	}
}

static void compare(struct job *j, const uint8_t *got, size_t at, size_t len)
{
	size_t i;

	gen(j, j->scratch, at, len);
	if (!memcmp(got, j->scratch, len)) {
		j->st->verified += len;
		return;
	}
	for (i = 0; i < len && got[i] == j->scratch[i]; i++)
		;
	j->st->mismatches++;
	if (j->st->first_bad < 0)
		j->st->first_bad = j->base + at + i;
}

struct req {
	size_t at, len;
	int write;
	uint8_t *buf;
};

/* Submits n requests at once and waits for all of them; checks reads. Returns -1 when the job
 * cannot go on (an AIO call failed, or a write failed: the disk's contents are unknown). */
static int batch(struct job *j, aio_context_t ctx, struct req *r, int n)
{
	struct iocb cbs[QD], *cbp[QD];
	struct io_event ev[QD];
	int i, k, sub = 0, got = 0, ret = 0;

	for (i = 0; i < n; i++) {
		memset(&cbs[i], 0, sizeof(cbs[i]));
		cbs[i].aio_data = i;
		cbs[i].aio_lio_opcode = r[i].write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
		cbs[i].aio_fildes = j->fd;
		cbs[i].aio_buf = (uintptr_t)r[i].buf;
		cbs[i].aio_nbytes = r[i].len;
		cbs[i].aio_offset = j->base + r[i].at;
		cbp[i] = &cbs[i];
	}
	while (sub < n) {
		long s = syscall(SYS_io_submit, ctx, n - sub, cbp + sub);

		if (s < 0 && errno == EINTR)
			continue;
		if (s <= 0) {
			fprintf(stderr, "job %d: io_submit: %s\n", j->id, s ? strerror(errno) : "none taken");
			j->st->errors++;
			return -1;
		}
		sub += s;
	}
	while (got < n) {
		long g = syscall(SYS_io_getevents, ctx, 1, n - got, ev + got, NULL);

		if (g < 0 && errno == EINTR)
			continue;
		if (g < 0) {
			fprintf(stderr, "job %d: io_getevents: %s\n", j->id, strerror(errno));
			j->st->errors++;
			return -1;
		}
		got += g;
	}
	for (k = 0; k < n; k++) {
		struct req *q = &r[ev[k].data];

		j->st->requests++;
		if (ev[k].res != (int64_t)q->len) {
			fprintf(stderr, "job %d: %s of %zu at %lld: %s\n", j->id,
				q->write ? "write" : "read", q->len, (long long)(j->base + q->at),
				ev[k].res < 0 ? strerror(-ev[k].res) : "short transfer");
			j->st->errors++;
			if (q->write)
				ret = -1;
			continue;
		}
		if (q->write)
			j->st->written += q->len;
		else
			compare(j, q->buf, q->at, q->len);
	}
	return ret;
}

/* Prepares request r: a write gets new versions of its sectors and their contents. */
static void prep(struct job *j, struct req *r, uint8_t *raw, size_t at, size_t len, int write)
{
	size_t s;

	r->at = at;
	r->len = len;
	r->write = write;
	r->buf = raw + rng_range(&j->rng, 0, PAGE / SECTOR - 1) * SECTOR;
	if (write) {
		for (s = at / SECTOR; s < (at + len) / SECTOR; s++)
			j->ver[s]++;
		gen(j, r->buf, at, len);
	} else {
		memset(r->buf, 0xa5, len);
	}
}

static void run_job(const char *dev, int id, uint64_t ops, size_t region, uint64_t seed,
		    double deadline, struct job_stats *st)
{
	struct job j = {
		.id = id, .seed = seed, .rng = seed * 0x9E3779B97F4A7C15ULL + id + 1,
		.base = (off_t)id * region, .region = region, .st = st,
	};
	struct req r[QD];
	aio_context_t ctx = 0;
	uint8_t *raw;
	uint64_t n;
	size_t off;
	int q, i, k;

	st->first_bad = -1;
	j.fd = open(dev, O_RDWR | O_DIRECT);
	j.ver = calloc(region / SECTOR, sizeof(*j.ver));
	j.scratch = malloc(MAX_IO);
	/* QD buffers, each with room for the largest request at the largest in-page offset. */
	raw = mmap(NULL, QD * BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (j.fd < 0 || !j.ver || !j.scratch || raw == MAP_FAILED ||
	    syscall(SYS_io_setup, QD, &ctx)) {
		fprintf(stderr, "job %d: setup failed: %s\n", id, strerror(errno));
		st->errors++;
		return;
	}
	/* The region's first contents, QD writes of 256 KiB at a time. */
	for (off = 0; off < region;) {
		for (q = 0; q < QD && off < region; q++, off += MAX_IO)
			prep(&j, &r[q], raw + q * BUF, off, region - off < MAX_IO ? region - off : MAX_IO, 1);
		if (batch(&j, ctx, r, q))
			goto out;
	}
	for (n = 0; n < ops; n += q) {
		int burst = region >= QD * MAX_IO && !(rng_next(&j.rng) & 3);
		int want = burst ? QD : (int)rng_range(&j.rng, 1, QD);
		size_t b = burst ? rng_range(&j.rng, 0, (region - QD * MAX_IO) / SECTOR) * SECTOR : 0;

		if (now_s() > deadline) {
			st->timed_out = 1;
			break;
		}
		for (q = 0, k = 0; q < want && k < 4 * QD; k++) {
			size_t len = burst ? MAX_IO : rng_range(&j.rng, MIN_IO / SECTOR, MAX_IO / SECTOR) * SECTOR;
			size_t at = burst ? b + q * MAX_IO : rng_range(&j.rng, 0, (region - len) / SECTOR) * SECTOR;

			for (i = 0; i < q; i++)
				if (at < r[i].at + r[i].len && r[i].at < at + len)
					break;
			if (i < q)
				continue;
			prep(&j, &r[q], raw + q * BUF, at, len, rng_next(&j.rng) & 1);
			q++;
		}
		if (batch(&j, ctx, r, q))
			goto out;
	}
	/* Everything once more, in reads of 256 KiB. */
	for (off = 0; off < region;) {
		for (q = 0; q < QD && off < region; q++, off += MAX_IO)
			prep(&j, &r[q], raw + q * BUF, off, region - off < MAX_IO ? region - off : MAX_IO, 0);
		if (batch(&j, ctx, r, q))
			goto out;
	}
	st->done = 1;
out:
	syscall(SYS_io_destroy, ctx);
	close(j.fd);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t jobs, ops, region_kib, seed, max_s = 300;
	struct job_stats *st, t = { 0 };
	double t0, secs;
	int j, ok = 1;

	if ((argc != 6 && argc != 7) || parse_u64(argv[2], MAX_JOBS, &jobs) || !jobs ||
	    parse_u64(argv[3], 1u << 20, &ops) || parse_u64(argv[4], 1u << 20, &region_kib) ||
	    region_kib * 1024 < MAX_IO || region_kib % 4 || parse_u64(argv[5], UINT64_MAX, &seed) ||
	    (argc == 7 && (parse_u64(argv[6], 86400, &max_s) || !max_s))) {
		fprintf(stderr, "usage: disk_soak DEVICE JOBS(1-%d) OPS REGION_KIB(>=256, 4 KiB steps) "
				"SEED [MAX_SECONDS]\n", MAX_JOBS);
		return 2;
	}
	printf("disk_soak: %s, %" PRIu64 " jobs of %" PRIu64 " requests in %" PRIu64
	       " KiB each, seed %" PRIu64 "\n", argv[1], jobs, ops, region_kib, seed);
	fflush(stdout);
	st = mmap(NULL, sizeof(*st) * jobs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(st, 0, sizeof(*st) * jobs);
	t0 = now_s();
	for (j = 0; j < (int)jobs; j++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			st[j].errors++;
			continue;
		}
		if (!pid) {
			run_job(argv[1], j, ops, region_kib * 1024, seed, t0 + max_s, &st[j]);
			_exit(0);
		}
	}
	while (wait(NULL) > 0 || errno == EINTR)
		;
	secs = now_s() - t0;
	for (j = 0; j < (int)jobs; j++) {
		printf("job %d: requests %" PRIu64 ", written %" PRIu64 ", verified %" PRIu64
		       ", mismatches %" PRIu64 ", errors %" PRIu64 "%s%s", j, st[j].requests,
		       st[j].written, st[j].verified, st[j].mismatches, st[j].errors,
		       st[j].done ? "" : ", did not finish", st[j].timed_out ? ", stopped at the time limit" : "");
		if (st[j].mismatches)
			printf(", first mismatch at byte %" PRId64, st[j].first_bad);
		printf("\n");
		t.requests += st[j].requests;
		t.written += st[j].written;
		t.verified += st[j].verified;
		t.mismatches += st[j].mismatches;
		t.errors += st[j].errors;
		if (!st[j].done || st[j].mismatches || st[j].errors)
			ok = 0;
	}
	printf("disk_soak: jobs %" PRIu64 ", requests %" PRIu64 ", written %" PRIu64 ", verified %" PRIu64
	       ", mismatches %" PRIu64 ", errors %" PRIu64 ", seconds %.1f\n", jobs, t.requests,
	       t.written, t.verified, t.mismatches, t.errors, secs);
	return ok ? 0 : 1;
}
