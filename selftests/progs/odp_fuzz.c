// SPDX-License-Identifier: GPL-2.0
/*
 * A fuzzer of the interfaces users and drivers reach: the /dev/odp_umem ioctls (the umem and the
 * exported C API behind them) and the attach/detach files of xen_swiotlb_rs (sysfs, and debugfs
 * where it is writable). Random commands, lengths, addresses and handles, with the process's
 * mappings changing in between (munmap, mmap back, mprotect, MADV_DONTNEED, fork with a child
 * that uses the inherited file and exits).
 *
 * Deterministic: a fixed seed (XENDMA_FUZZ_SEED overrides it), printed, and a bounded number
 * of iterations (XENDMA_FUZZ_ITERS). Every call must succeed or fail with an errno of its
 * documented set; a CPU write through a mapping that succeeded is read back and compared;
 * afterwards nothing may stay mapped or attached. The lane report adds the kernel log's
 * verdict (no WARN, BUG, KASAN or lockdep report) and kmemleak's.
 *
 * Prints KTAP lines and "odp_fuzz: N passed, M failed, K skipped".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ktap.h"
#include "odp_umem_ioctl.h"

#define PAGE 4096UL
#define ARENA_PAGES 64


#define SWIOTLB "/sys/module/xen_swiotlb_rs"
#define SWIOTLB_DEBUGFS "/sys/kernel/debug/xen_swiotlb_rs"

static uint64_t rng;

/* xorshift64*: the same sequence for the same seed on every machine. */
static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

static unsigned long long below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static uint8_t *arena;
/* XENDMA_FUZZ_FAIL_NTH: each /dev/odp_umem call runs with one of its first fault points failed
 * (/proc/thread-self/fail-nth; fault_inject runs this). */
static int fail_nth_fd = -1;
static long injected;
/* The umems registered now: handle, start, length. */
static uint64_t handles[16], starts[16], lens[16];
static int nhandles;
static long unexpected, calls, ok_calls, verified_bytes, forks;

/* The errnos the interfaces document; anything else is a failure. */
static int expected_errno(int e)
{
	switch (e) {
	case EINVAL: case EFAULT: case ERANGE: case EPERM: case ENOENT: case EEXIST:
	case ENOSPC: case E2BIG: case EOVERFLOW: case EBUSY: case ENOTTY: case ENOMEM:
	case ENODEV:
		return 1;
	}
	return 0;
}

static void note(const char *what, int rc, const uint64_t *a, int n)
{
	calls++;
	if (rc == 0) {
		ok_calls++;
		return;
	}
	if (expected_errno(errno))
		return;
	unexpected++;
	if (unexpected <= 10) {
		printf("# unexpected errno %d (%s) from %s:", errno, strerror(errno), what);
		for (int i = 0; i < n; i++)
			printf(" %#llx", (unsigned long long)a[i]);
		printf("\n");
	}
}

/* An address: mostly in the arena (aligned or not), sometimes anywhere. */
static uint64_t addr(void)
{
	switch (below(10)) {
	case 0: return rnd();
	case 1: return 0;
	case 2: return 0xffff888000000000ULL + below(1ULL << 30);	/* kernel */
	case 3: return 0x00007ffffffff000ULL - below(4) * PAGE;	/* the top of user space */
	case 4: return (uintptr_t)arena + below(ARENA_PAGES * PAGE);
	default: return (uintptr_t)arena + below(ARENA_PAGES) * PAGE;
	}
}

static uint64_t length(void)
{
	switch (below(8)) {
	case 0: return 0;
	case 1: return rnd();
	case 2: return below(8192);
	case 3: return (1ULL << 30) + PAGE;
	default: return (1 + below(8)) * PAGE;
	}
}

static uint64_t handle(void)
{
	if (nhandles && below(4))
		return handles[below(nhandles)];
	return below(3) ? below(64) : rnd();
}

/* One random operation on /dev/odp_umem. */
static void odp_op(int fd)
{
	static uint8_t buf[65536];
	uint64_t a[7] = { 0 };
	int rc;

	switch (below(10)) {
	case 0:
	case 1: {
		a[0] = addr() & (below(4) ? ~(PAGE - 1) : ~0ULL);
		a[1] = length();
		a[2] = below(5) ? PAGE : (below(2) ? 2UL << 20 : rnd());
		a[3] = below(5) ? 1 + below(3) : rnd();
		rc = ioctl(fd, ODP_REGISTER, a);
		note("REGISTER", rc, a, 4);
		if (!rc && nhandles < 16) {
			handles[nhandles] = a[4];
			starts[nhandles] = a[0];
			lens[nhandles++] = a[1];
		}
		break;
	}
	case 2:
		a[0] = handle();
		rc = ioctl(fd, ODP_UNREGISTER, a);
		note("UNREGISTER", rc, a, 1);
		for (int i = 0; !rc && i < nhandles; i++) {
			if (handles[i] == a[0]) {
				nhandles--;
				handles[i] = handles[nhandles];
				starts[i] = starts[nhandles];
				lens[i] = lens[nhandles];
				break;
			}
		}
		break;
	case 3:
	case 4: {
		/* CPU read through the mapping (fast), with the data compared to the arena. */
		uint64_t n = below(4) ? below(sizeof(buf)) + 1 : length();
		uint64_t at = addr();

		a[0] = handle();
		if (nhandles && below(2)) {
			/* Inside a registered umem, where the read can succeed. */
			int k = (int)below(nhandles);
			uint64_t off = below(lens[k]);

			a[0] = handles[k];
			at = starts[k] + off;
			n = 1 + below(lens[k] - off < sizeof(buf) ? lens[k] - off : sizeof(buf));
		}
		a[1] = at, a[2] = n, a[3] = (uintptr_t)buf, a[4] = ODP_XFER_CPU;
		if (!below(20))
			a[3] = addr();	/* a bad user buffer */
		rc = ioctl(fd, ODP_READ, a);
		note("READ(cpu)", rc, a, 5);
		if (!rc && a[3] == (uintptr_t)buf && at >= (uintptr_t)arena &&
		    at + n <= (uintptr_t)arena + ARENA_PAGES * PAGE) {
			/* The arena may have holes now; only compare when the read succeeded, and
			 * then every byte must be what the process sees. */
			if (memcmp(buf, (void *)(uintptr_t)at, n)) {
				unexpected++;
				printf("# READ(cpu) of %llu bytes at %#llx differs from the memory\n",
				       (unsigned long long)n, (unsigned long long)at);
			} else {
				verified_bytes += n;
			}
		}
		break;
	}
	case 5: {
		/* A device transfer (100 ms each in QEMU): rare and short. */
		if (below(4))
			break;
		a[0] = handle(), a[1] = addr(), a[2] = 1 + below(2048), a[3] = (uintptr_t)buf;
		a[4] = below(8) ? 0 : rnd();
		rc = ioctl(fd, below(2) ? ODP_WRITE : ODP_READ, a);
		note("READ/WRITE(edu)", rc, a, 5);
		break;
	}
	case 6:
		a[0] = handle();
		rc = ioctl(fd, ODP_STATS, a);
		note("STATS", rc, a, 1);
		break;
	case 7:
		a[0] = addr() & ~(PAGE - 1), a[1] = length(), a[2] = below(4) ? 3 : rnd();
		rc = ioctl(fd, ODP_ABI_GET, a);
		note("ABI_GET", rc, a, 3);
		break;
	case 8:
		a[0] = addr(), a[1] = below(3) ? below(4 * PAGE) : length();
		a[2] = below(4) ? 1 + below(3) : rnd();
		rc = ioctl(fd, ODP_ABI_MAP, a);
		note("ABI_MAP", rc, a, 3);
		break;
	default:
		switch (below(3)) {
		case 0:
			a[0] = addr(), a[1] = length();
			rc = ioctl(fd, ODP_ABI_UNMAP, a);
			note("ABI_UNMAP", rc, a, 2);
			break;
		case 1:
			rc = ioctl(fd, ODP_ABI_RELEASE, 0);
			note("ABI_RELEASE", rc < 0 ? rc : 0, a, 0);
			break;
		default:
			rc = ioctl(fd, ODP_ABI_INVALIDATIONS, 0);
			note("ABI_INVALIDATIONS", rc < 0 ? rc : 0, a, 0);
			break;
		}
	}
}

/* odp_op, with the N-th fault point of the call failed in fail-nth mode. */
static void odp_op_faulty(int fd)
{
	char v[16] = "";
	int len;

	if (fail_nth_fd < 0) {
		odp_op(fd);
		return;
	}
	len = snprintf(v, sizeof(v), "%llu", 1 + below(8));
	if (pwrite(fail_nth_fd, v, len, 0) != len) {
		odp_op(fd);
		return;
	}
	odp_op(fd);
	memset(v, 0, sizeof(v));
	if (pread(fail_nth_fd, v, sizeof(v) - 1, 0) > 0 && atoi(v) == 0)
		injected++;
	if (pwrite(fail_nth_fd, "0", 1, 0) != 1)
		unexpected++;
}

/* One random change of the process's mappings under the umems. */
static void mm_op(int fd)
{
	uint8_t *p = arena + below(ARENA_PAGES) * PAGE;
	size_t n = (1 + below(4)) * PAGE;

	if (p + n > arena + ARENA_PAGES * PAGE)
		n = arena + ARENA_PAGES * PAGE - p;
	switch (below(6)) {
	case 0:
		munmap(p, n);
		break;
	case 1:
		if (mmap(p, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
		    MAP_FAILED)
			memset(p, (int)below(256), n);
		break;
	case 2:
		mprotect(p, n, below(2) ? PROT_READ : PROT_READ | PROT_WRITE);
		break;
	case 3:
		madvise(p, n, MADV_DONTNEED);
		break;
	case 4: {
		/* Writes where the memory is mapped and writable (a fault elsewhere is skipped by
		 * mprotect'ing everything writable first). */
		mprotect(p, n, PROT_READ | PROT_WRITE);
		if (mmap(p, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
		    MAP_FAILED)
			for (size_t i = 0; i < n; i += 512)
				p[i] = (uint8_t)rnd();
		break;
	}
	default: {
		pid_t pid = fork();

		if (pid == 0) {
			/* The child: a few calls on the inherited file, then exit with them live. */
			for (int i = 0; i < 20; i++)
				odp_op(fd);
			_exit(unexpected ? 3 : 0);
		}
		if (pid > 0) {
			int st = 0;

			forks++;
			waitpid(pid, &st, 0);
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				unexpected++;
				printf("# a forked child ended with status %#x\n", st);
			}
		}
	}
	}
}

static long long read_ll(const char *path)
{
	long long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static void fuzz_odp(long iters)
{
	long long mapped0 = read_ll("/sys/kernel/debug/odp_umem/pages_mapped"), mapped1;
	int fd = open("/dev/odp_umem", O_RDWR);

	if (fd < 0) {
		skip("fuzz /dev/odp_umem", "no /dev/odp_umem (a production build has no test device)");
		return;
	}
	arena = mmap(NULL, ARENA_PAGES * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED) {
		check(0, "mmap the fuzz arena: %s", strerror(errno));
		close(fd);
		return;
	}
	for (size_t i = 0; i < ARENA_PAGES * PAGE; i++)
		arena[i] = (uint8_t)i;
	for (long i = 0; i < iters; i++) {
		if (below(8))
			odp_op_faulty(fd);
		else
			mm_op(fd);
	}
	if (fail_nth_fd >= 0)
		printf("# injected: %ld failures in the calls\n", injected);
	printf("# /dev/odp_umem: %ld calls, %ld succeeded, %ld bytes read back and compared, %ld forks\n",
	       calls, ok_calls, verified_bytes, forks);
	check(unexpected == 0, "fuzz /dev/odp_umem: %ld iterations, no unexpected result (%ld)",
	      iters, unexpected);
	check(ok_calls > iters / 20, "fuzz /dev/odp_umem: some calls got through (%ld of %ld)",
	      ok_calls, calls);
	check(verified_bytes > 0, "fuzz /dev/odp_umem: data read through the umems matched (%ld bytes)",
	      verified_bytes);
	close(fd);
	munmap(arena, ARENA_PAGES * PAGE);
	mapped1 = read_ll("/sys/kernel/debug/odp_umem/pages_mapped");
	if (mapped0 < 0 || mapped1 < 0)
		skip("fuzz /dev/odp_umem: nothing left mapped", "debugfs odp_umem/ is not readable");
	else
		check(mapped1 == mapped0, "fuzz /dev/odp_umem: nothing left mapped after close (%lld -> %lld)",
		      mapped0, mapped1);
}

/* A PCI device's driver name, or "" if none. */
static void driver_of(const char *bdf, char *out, size_t size)
{
	char path[300], link[300];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	out[0] = 0;
	if (n > 0) {
		link[n] = 0;
		snprintf(out, size, "%s", strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
	}
}

/* The edu devices no driver holds: the only real devices the fuzzer may attach. */
static int free_edus(char names[][32], int max)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)) && n < max) {
		char path[300], id[32] = "", drv[300], ovr[64] = "";
		FILE *f;

		if (e->d_name[0] == '.' || strlen(e->d_name) >= 32)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
		f = fopen(path, "r");
		if (f) {
			if (!fgets(id, sizeof(id), f))
				id[0] = 0;
			fclose(f);
		}
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", e->d_name);
		f = fopen(path, "r");
		if (f) {
			if (!fgets(ovr, sizeof(ovr), f))
				ovr[0] = 0;
			fclose(f);
		}
		driver_of(e->d_name, drv, sizeof(drv));
		if (!strncmp(id, "0x11e8", 6) && !drv[0] && strncmp(ovr, "pciback", 7))
			snprintf(names[n++], 32, "%s", e->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

/* A random name for attach/detach: garbage, near-valid names of absent devices (bus 0x40 and
 * up: QEMU's guests have none), or a free edu device. */
static size_t random_name(char *s, size_t size, char edus[][32], int nedus)
{
	size_t n = 0;

	switch (below(6)) {
	case 0:
		n = below(size);
		for (size_t i = 0; i < n; i++)
			s[i] = (char)below(256);
		return n;
	case 1:
		n = below(64);
		for (size_t i = 0; i < n; i++)
			s[i] = "0123456789abcdefABCDEF:. \n\t-x"[below(29)];
		return n;
	case 2:
		return (size_t)snprintf(s, size, "%04llx:%02llx:%02llx.%llx%s", below(0x10000),
					0x40 + below(0xc0), below(0x20), below(8), below(2) ? "\n" : "");
	case 3:
		return (size_t)snprintf(s, size, "%02llx:%02llx.%llx", 0x40 + below(0xc0), below(0x40),
					below(16));
	default:
		if (!nedus)
			return (size_t)snprintf(s, size, "0000:ff:1f.7");
		return (size_t)snprintf(s, size, "%s%s", edus[below(nedus)], below(2) ? "\n" : "");
	}
}

static int write_raw(const char *path, const char *s, size_t n)
{
	int f = open(path, O_WRONLY);
	ssize_t w;

	if (f < 0)
		return -errno;
	w = write(f, s, n);
	close(f);
	return w < 0 ? -errno : 0;
}

static void fuzz_attach(long iters)
{
	static const char *const files[] = {
		SWIOTLB "/attach", SWIOTLB "/detach",
		SWIOTLB_DEBUGFS "/attach", SWIOTLB_DEBUGFS "/detach",
	};
	char edus[4][32], s[512];
	long bad = 0, writes = 0, ok = 0;
	long long att0, att1;
	int nedus, nfiles = 2;
	struct stat st;

	if (stat(SWIOTLB "/attach", &st)) {
		skip("fuzz attach/detach", "xen_swiotlb_rs is not loaded");
		return;
	}
	/* debugfs too, where it may be written (not under lockdown). */
	if (!access(SWIOTLB_DEBUGFS "/attach", W_OK) && write_raw(SWIOTLB_DEBUGFS "/detach", "x", 1) != -EPERM)
		nfiles = 4;
	nedus = free_edus(edus, 4);
	att0 = read_ll(SWIOTLB_DEBUGFS "/attached");
	printf("# attach/detach: %d files, free edu devices:", nfiles);
	for (int i = 0; i < nedus; i++)
		printf(" %s", edus[i]);
	printf("\n");
	for (long i = 0; i < iters; i++) {
		size_t n = random_name(s, sizeof(s), edus, nedus);
		int rc = write_raw(files[below(nfiles)], s, n);

		writes++;
		if (!rc) {
			ok++;
			continue;
		}
		switch (-rc) {
		case EINVAL: case ENODEV: case EEXIST: case ENOENT: case EBUSY:
			break;
		default:
			if (++bad <= 10)
				printf("# unexpected errno %d (%s) writing %zu bytes\n", -rc,
				       strerror(-rc), n);
		}
	}
	/* Put the edu devices back as they were. */
	for (int i = 0; i < nedus; i++)
		write_raw(SWIOTLB "/detach", edus[i], strlen(edus[i]));
	printf("# attach/detach: %ld writes, %ld accepted\n", writes, ok);
	check(bad == 0, "fuzz attach/detach: %ld writes, every refusal a documented errno (%ld others)",
	      writes, bad);
	check(nedus == 0 || ok > 0, "fuzz attach/detach: the free edu devices were attached and detached (%ld accepted)",
	      ok);
	att1 = read_ll(SWIOTLB_DEBUGFS "/attached");
	if (att0 < 0 || att1 < 0)
		skip("fuzz attach/detach: nothing left attached", "debugfs xen_swiotlb_rs/ is not readable");
	else
		check(att1 == att0, "fuzz attach/detach: nothing left attached (%lld -> %lld)", att0, att1);
	for (int i = 0; i < nedus; i++) {
		char drv[300];

		driver_of(edus[i], drv, sizeof(drv));
		check(!drv[0], "fuzz attach/detach: %s has no driver again ('%s')", edus[i], drv);
	}
}

int main(void)
{
	const char *s = getenv("XENDMA_FUZZ_SEED"), *it = getenv("XENDMA_FUZZ_ITERS");
	uint64_t seed = s ? strtoull(s, NULL, 0) : 0x0d9f2026;
	long iters = it ? strtol(it, NULL, 0) : 3000;

	if (!seed)
		seed = 1;
	printf("# seed %#llx (XENDMA_FUZZ_SEED), %ld iterations (XENDMA_FUZZ_ITERS)\n",
	       (unsigned long long)seed, iters);
	rng = seed;
	if (getenv("XENDMA_FUZZ_FAIL_NTH")) {
		fail_nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
		check(fail_nth_fd >= 0, "fail-nth mode: /proc/thread-self/fail-nth opens (%s)",
		      fail_nth_fd < 0 ? strerror(errno) : "ok");
		fuzz_odp(iters);
		return ktap_finish("odp_fuzz");
	}
	fuzz_odp(iters);
	fuzz_attach(iters / 10);
	return ktap_finish("odp_fuzz");
}
