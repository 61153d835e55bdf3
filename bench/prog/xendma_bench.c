// SPDX-License-Identifier: GPL-2.0
/*
 * xendma_bench: the user-space half of the benchmark driver (bench/kmod/xendma_bench.c), run in
 * the guest by bench/guest/bench.sh. Prints one "key=value ..." line per measurement.
 *
 *   xendma_bench memcpy BYTES THREADS MS FLAGS  (1: cold, 2: out-of-line memcpy(),
 *                                                4: hot destination one page off its 4 MiB alignment,
 *                                                8 * N: N pages off instead)
 *   xendma_bench pressure BDF SLOTS PERCENT MS SEED
 *   xendma_bench place BDF PAGES DIR OFFSET MS  (dma_map_benchmark's loop, the buffer OFFSET pages
 *                                                into a 4 MiB-aligned block)
 *   xendma_bench odp BDF MIB REPEATS
 *   xendma_bench hmm MIB REPEATS         (the kernel's test_hmm mirror, /dev/hmm_dmirror0)
 *   xendma_bench odp-profile BDF MIB     one pass of odp faults at 1 and at 16 pages per fault,
 *   xendma_bench hmm-profile MIB         or of test_hmm reads, each between two sync(2) calls
 *                                        (the marks of the instruction profile's QEMU plugin)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../kmod/xendma_bench.h"
/* The kernel's lib/test_hmm_uapi.h (scripts/bench.sh adds the benchmark kernel's lib/). */
#include "test_hmm_uapi.h"

#define PAGE 4096UL
/* Pages spread over the region for the invalidation-to-refault samples. */
#define INVAL_SAMPLES 256

static int fd;

static void die(const char *what)
{
	fprintf(stderr, "xendma_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void xioctl(unsigned long cmd, __u64 *a, const char *what)
{
	if (ioctl(fd, cmd, a) < 0)
		die(what);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void parse_bdf(const char *s, __u64 *a)
{
	unsigned int dom, bus, dev, fn;

	if (sscanf(s, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4 || dev > 31 || fn > 7) {
		fprintf(stderr, "xendma_bench: bad PCI name %s\n", s);
		exit(2);
	}
	a[0] = dom;
	a[1] = bus;
	a[2] = dev << 3 | fn;
}

/* A BDF and four numbers after it: a[0..2], then a[3..6]. */
static void parse_bdf_and_4(char **argv, __u64 *a)
{
	int i;

	parse_bdf(argv[0], a);
	for (i = 1; i <= 4; i++)
		a[2 + i] = strtoull(argv[i], NULL, 0);
}

static int cmd_memcpy(char **argv)
{
	__u64 a[6] = { strtoull(argv[0], NULL, 0), strtoull(argv[1], NULL, 0),
		       strtoull(argv[2], NULL, 0), strtoull(argv[3], NULL, 0) };
	unsigned long long off = (a[3] >> 3) ? (a[3] >> 3) * PAGE : (a[3] & 4) ? PAGE : 0;

	xioctl(XB_MEMCPY, a, "memcpy");
	printf("memcpy bytes=%llu threads=%llu cold=%llu call=%llu offset=%llu copies=%llu ns=%.3f\n",
	       a[0], a[1], a[3] & 1, (a[3] >> 1) & 1, off, a[4], a[5] / 1000.0);
	return 0;
}

static int cmd_pressure(char **argv)
{
	__u64 a[13] = {};

	parse_bdf_and_4(argv, a);
	xioctl(XB_PRESSURE, a, "pressure");
	printf("pressure slots=%llu pct=%llu attempts=%llu fails=%llu maps_per_s=%llu "
	       "held_slots=%llu held=%llu fill_fails=%llu\n",
	       a[3], a[4], a[7], a[8], a[9], a[10], a[11], a[12]);
	return 0;
}

static void region(const __u64 *bdf, char *buf, size_t len, int odp)
{
	__u64 a[6] = { bdf[0], bdf[1], bdf[2], (uintptr_t)buf, len, odp };

	xioctl(XB_REGION, a, "region");
}

/* Pages per second of faulting the whole region in chunks, median of the repeats. */
static void fault_rate(const __u64 *bdf, char *buf, size_t len, int odp, size_t chunk, int reps)
{
	uint64_t ns[16];
	int r;

	for (r = 0; r < reps; r++) {
		__u64 a[4] = { (uintptr_t)buf, len, chunk };
		__u64 u[3] = { (uintptr_t)buf, len };

		if (odp) {
			xioctl(XB_ODP_UNMAP, u, "odp unmap");
			xioctl(XB_ODP_FAULT, a, "odp fault");
		} else {
			xioctl(XB_GUP_PIN, a, "gup pin");
			xioctl(XB_GUP_UNPIN, u, "gup unpin");
		}
		ns[r] = a[3];
	}
	printf("odp kind=%s chunk=%zu pages=%zu reps=%d pages_per_s=%.0f\n", odp ? "odp" : "gup",
	       chunk, len / PAGE, reps, (double)(len / PAGE) * 1e9 / (double)median(ns, reps));
	(void)bdf;
}

/*
 * Invalidation to refault of single pages: MADV_DONTNEED of a page the device has mapped, then
 * the device's fault of it. For GUP, what the pinned model must do instead: unpin and unmap the
 * page, MADV_DONTNEED, pin and map the new page.
 */
static void inval_refault(char *buf, size_t len, int odp)
{
	static uint64_t inval[INVAL_SAMPLES], refault[INVAL_SAMPLES], total[INVAL_SAMPLES];
	size_t stride = len / INVAL_SAMPLES;
	int before = odp ? ioctl(fd, XB_ODP_INVALIDATIONS) : 0, i;

	for (i = 0; i < INVAL_SAMPLES; i++) {
		char *p = buf + i * stride;
		__u64 f[4] = { (uintptr_t)p, PAGE, PAGE };
		__u64 u[3] = { (uintptr_t)p, PAGE };
		uint64_t t0, t1, t2;

		t0 = now_ns();
		if (!odp)
			xioctl(XB_GUP_UNPIN, u, "gup unpin");
		if (madvise(p, PAGE, MADV_DONTNEED))
			die("madvise");
		t1 = now_ns();
		xioctl(odp ? XB_ODP_FAULT : XB_GUP_PIN, f, "refault");
		t2 = now_ns();
		inval[i] = t1 - t0;
		refault[i] = t2 - t1;
		total[i] = t2 - t0;
	}
	printf("odp_inval kind=%s samples=%d invalidate_us=%.2f refault_us=%.2f total_us=%.2f "
	       "callbacks=%d\n", odp ? "odp" : "gup", INVAL_SAMPLES,
	       median(inval, INVAL_SAMPLES) / 1000.0, median(refault, INVAL_SAMPLES) / 1000.0,
	       median(total, INVAL_SAMPLES) / 1000.0,
	       odp ? ioctl(fd, XB_ODP_INVALIDATIONS) - before : 0);
}

/* len bytes of anonymous memory in base pages, every one resident (the CPU wrote it). */
static char *resident(size_t len)
{
	char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (buf == MAP_FAILED)
		die("mmap");
	madvise(buf, len, MADV_NOHUGEPAGE);
	memset(buf, 0x5a, len);
	return buf;
}

static int cmd_place(char **argv)
{
	__u64 a[13] = {};

	parse_bdf_and_4(argv, a);
	xioctl(XB_PLACE, a, "place");
	/* dist: pages from the buffer's first page to the mapping's, modulo 4 GiB */
	printf("place g=%llu d=%llu off=%llu pairs=%llu ps=%llu map_ps=%llu dma=%#llx buf=%#llx "
	       "dist=%llu seen=%llu\n",
	       a[3], a[4], a[5], a[7], a[8], a[12], a[9], a[10],
	       ((a[9] - a[10]) >> 12) & 0xfffff, a[11]);
	return 0;
}

static int cmd_odp(char **argv)
{
	size_t len = strtoull(argv[1], NULL, 0) << 20, chunks[] = { PAGE, 16 * PAGE };
	int reps = atoi(argv[2]), odp, c;
	__u64 bdf[3];
	char *buf;

	parse_bdf(argv[0], bdf);
	if (reps < 1 || reps > 16 || !len) {
		fprintf(stderr, "xendma_bench: odp: bad arguments\n");
		return 2;
	}
	/* Base pages only, every one resident: the device reads data the CPU wrote. */
	buf = resident(len);
	for (odp = 1; odp >= 0; odp--) {
		__u64 all[4] = { (uintptr_t)buf, len, len };

		region(bdf, buf, len, odp);
		for (c = 0; c < 2; c++)
			fault_rate(bdf, buf, len, odp, chunks[c], reps);
		/* Everything mapped for the device, then single pages invalidated and refaulted. */
		xioctl(odp ? XB_ODP_FAULT : XB_GUP_PIN, all, "map all");
		inval_refault(buf, len, odp);
		xioctl(XB_RELEASE, NULL, "release");
	}
	munmap(buf, len);
	return 0;
}

/* One test_hmm ioctl on npages from p; every page must come back, and faults counts the mirror's faults. */
static void dmirror(unsigned long cmd, char *p, size_t npages, void *bounce, __u64 *faults)
{
	struct hmm_dmirror_cmd c = { .addr = (uintptr_t)p, .ptr = (uintptr_t)bounce, .npages = npages };

	if (ioctl(fd, cmd, &c) < 0)
		die("hmm_dmirror ioctl");
	if (c.cpages != npages) {
		fprintf(stderr, "xendma_bench: hmm: %llu of %zu pages\n", (unsigned long long)c.cpages, npages);
		exit(1);
	}
	*faults += c.faults;
}

/*
 * The same measurements as cmd_odp's, on the kernel's HMM test driver: its HMM_DMIRROR_READ faults
 * the pages it lacks through hmm_range_fault (at most 64 per call of it) into its mirror, then
 * copies them into a bounce buffer it vmallocs per call and on to user space. The mirror is emptied
 * before each pass by write-protecting the region and restoring it (each invalidates the mirror's
 * range; the pages stay resident). One ioctl per chunk, timed from user space.
 */
static int cmd_hmm(char **argv)
{
	size_t len = strtoull(argv[0], NULL, 0) << 20, chunks[] = { PAGE, 16 * PAGE }, off;
	int reps = atoi(argv[1]), r, c, i;
	static uint64_t inval[INVAL_SAMPLES], refault[INVAL_SAMPLES], total[INVAL_SAMPLES];
	uint64_t ns[16];
	char *buf, *bounce;

	if (reps < 1 || reps > 16 || !len) {
		fprintf(stderr, "xendma_bench: hmm: bad arguments\n");
		return 2;
	}
	bounce = malloc(16 * PAGE);
	if (!bounce)
		die("malloc");
	buf = resident(len);
	for (c = 0; c < 2; c++) {
		__u64 faults = 0;

		for (r = 0; r < reps; r++) {
			uint64_t t0;

			if (mprotect(buf, len, PROT_READ) || mprotect(buf, len, PROT_READ | PROT_WRITE))
				die("mprotect");
			t0 = now_ns();
			for (off = 0; off < len; off += chunks[c])
				dmirror(HMM_DMIRROR_READ, buf + off, chunks[c] / PAGE, bounce, &faults);
			ns[r] = now_ns() - t0;
		}
		/* Each call must have faulted: a mirror left populated would measure a lookup. */
		if (faults < (__u64)reps * (len / chunks[c])) {
			fprintf(stderr, "xendma_bench: hmm: %llu faults for %zu calls\n",
				(unsigned long long)faults, reps * (len / chunks[c]));
			return 1;
		}
		printf("odp kind=hmm chunk=%zu pages=%zu reps=%d pages_per_s=%.0f faults=%llu\n", chunks[c],
		       len / PAGE, reps, (double)(len / PAGE) * 1e9 / (double)median(ns, reps),
		       (unsigned long long)faults);
	}
	/* Invalidation to refault: MADV_DONTNEED of a mirrored page, then a write through the mirror
	 * (HMM_DMIRROR_WRITE faults it writable: a new page, as the device's write fault of odp). */
	{
		__u64 faults = 0;

		for (off = 0; off < len; off += 16 * PAGE)
			dmirror(HMM_DMIRROR_READ, buf + off, 16, bounce, &faults);
		for (i = 0; i < INVAL_SAMPLES; i++) {
			char *p = buf + i * (len / INVAL_SAMPLES);
			uint64_t t0, t1, t2;

			t0 = now_ns();
			if (madvise(p, PAGE, MADV_DONTNEED))
				die("madvise");
			t1 = now_ns();
			dmirror(HMM_DMIRROR_WRITE, p, 1, bounce, &faults);
			t2 = now_ns();
			inval[i] = t1 - t0;
			refault[i] = t2 - t1;
			total[i] = t2 - t0;
		}
		printf("odp_inval kind=hmm samples=%d invalidate_us=%.2f refault_us=%.2f total_us=%.2f "
		       "callbacks=0\n", INVAL_SAMPLES, median(inval, INVAL_SAMPLES) / 1000.0,
		       median(refault, INVAL_SAMPLES) / 1000.0, median(total, INVAL_SAMPLES) / 1000.0);
	}
	free(bounce);
	munmap(buf, len);
	return 0;
}

/*
 * The instruction profile's passes (bench/guest/bench.sh profile_odp): the region made resident,
 * then for 1 and 16 pages per fault, the device's view emptied, sync(2), one pass of faults over
 * the region, sync(2). Ours (odp) or the test_hmm mirror.
 */
static int cmd_fault_profile(const char *bdf_s, const char *mib, int odp)
{
	size_t len = strtoull(mib, NULL, 0) << 20, chunks[] = { PAGE, 16 * PAGE }, off;
	char *buf, *bounce = malloc(16 * PAGE);
	__u64 bdf[3], faults = 0;
	int c;

	if (!len || len > (1UL << 30) || !bounce) {
		fprintf(stderr, "xendma_bench: profile: bad arguments\n");
		return 2;
	}
	buf = resident(len);
	if (odp) {
		parse_bdf(bdf_s, bdf);
		region(bdf, buf, len, 1);
	}
	for (c = 0; c < 2; c++) {
		__u64 a[4] = { (uintptr_t)buf, len, chunks[c] };
		__u64 u[3] = { (uintptr_t)buf, len };

		if (odp)
			xioctl(XB_ODP_UNMAP, u, "odp unmap");
		else if (mprotect(buf, len, PROT_READ) || mprotect(buf, len, PROT_READ | PROT_WRITE))
			die("mprotect");
		sync();
		if (odp)
			xioctl(XB_ODP_FAULT, a, "odp fault");
		else
			for (off = 0; off < len; off += chunks[c])
				dmirror(HMM_DMIRROR_READ, buf + off, chunks[c] / PAGE, bounce, &faults);
		sync();
		printf("profile_pass kind=%s chunk=%zu pages=%zu\n", odp ? "odp" : "hmm", chunks[c] / PAGE,
		       len / PAGE);
	}
	if (odp)
		xioctl(XB_RELEASE, NULL, "release");
	free(bounce);
	munmap(buf, len);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		goto usage;
	if (!strcmp(argv[1], "hmm") && argc == 4) {
		setvbuf(stdout, NULL, _IOLBF, 0);
		fd = open("/dev/hmm_dmirror0", O_RDWR);
		if (fd < 0)
			die("/dev/hmm_dmirror0");
		return cmd_hmm(argv + 2);
	}
	if (!strcmp(argv[1], "hmm-profile") && argc == 3) {
		setvbuf(stdout, NULL, _IOLBF, 0);
		fd = open("/dev/hmm_dmirror0", O_RDWR);
		if (fd < 0)
			die("/dev/hmm_dmirror0");
		return cmd_fault_profile(NULL, argv[2], 0);
	}
	fd = open(XENDMA_BENCH_DEV, O_RDWR);
	if (fd < 0)
		die(XENDMA_BENCH_DEV);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "memcpy") && argc == 6)
		return cmd_memcpy(argv + 2);
	if (!strcmp(argv[1], "pressure") && argc == 7)
		return cmd_pressure(argv + 2);
	if (!strcmp(argv[1], "place") && argc == 7)
		return cmd_place(argv + 2);
	if (!strcmp(argv[1], "odp") && argc == 5)
		return cmd_odp(argv + 2);
	if (!strcmp(argv[1], "odp-profile") && argc == 4)
		return cmd_fault_profile(argv[2], argv[3], 1);
usage:
	fprintf(stderr, "usage: xendma_bench memcpy BYTES THREADS MS FLAGS\n"
			"       xendma_bench pressure BDF SLOTS PERCENT MS SEED\n"
			"       xendma_bench place BDF PAGES DIR OFFSET MS\n"
			"       xendma_bench odp BDF MIB REPEATS\n"
			"       xendma_bench hmm MIB REPEATS\n"
			"       xendma_bench odp-profile BDF MIB\n"
			"       xendma_bench hmm-profile MIB\n");
	return 2;
}
