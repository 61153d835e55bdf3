// SPDX-License-Identifier: GPL-2.0
/*
 * odp_demo: what `make run` shows of odp_umem. Registers 64 KiB of this process's memory with the
 * test device /dev/odp_umem (a test build of odp_umem.ko, whose device is the QEMU edu), lets the
 * device read it (the pages are faulted in and DMA-mapped on demand), drops half of it with
 * madvise(MADV_DONTNEED) (the mmu notifier invalidates those pages), lets the device read again
 * (they fault back in, now as fresh zero pages) and write (the process sees the device's data).
 * Prints the module's counters (debugfs odp_umem/) after each step and checks the data; exits 1
 * on a wrong byte or a failed call.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define ODP_REGISTER _IOWR('O', 1, uint64_t[5])
#define ODP_UNREGISTER _IOW('O', 2, uint64_t)
#define ODP_READ _IOW('O', 3, uint64_t[5])
#define ODP_WRITE _IOW('O', 4, uint64_t[5])
#define ACC_RW 3
#define PAGES 16
#define LEN (PAGES * 4096UL)

static const char *const names[] = { "faults", "pages_mapped", "invalidations", "retries" };
static uint64_t last[4];

static uint64_t counter(const char *name)
{
	char path[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/odp_umem/%s", name);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%llu", &v) != 1)
		v = 0;
	if (f)
		fclose(f);
	return v;
}

/*
 * One line: what happened, then each counter and how much it moved. Returns how much counter
 * `which` moved.
 */
static long long step(const char *what, int which)
{
	long long moved = 0;

	printf("odp_umem: %-52s", what);
	for (int i = 0; i < 4; i++) {
		uint64_t v = counter(names[i]);

		printf(" %s %llu (%+lld)", names[i], (unsigned long long)v, (long long)(v - last[i]));
		if (i == which)
			moved = (long long)(v - last[i]);
		last[i] = v;
	}
	printf("\n");
	return moved;
}

static int xfer(int fd, unsigned long cmd, uint64_t h, void *addr, size_t len, void *buf)
{
	uint64_t a[5] = { h, (uintptr_t)addr, len, (uintptr_t)buf, 0 };

	return ioctl(fd, cmd, a);
}

static int fail(const char *what)
{
	printf("odp_umem: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(void)
{
	uint8_t *mem, out[LEN], in[LEN];
	uint64_t a[5];
	int fd, bad = 0;

	fd = open("/dev/odp_umem", O_RDWR);
	if (fd < 0)
		return fail("open /dev/odp_umem (the test build of odp_umem.ko)");
	mem = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail("mmap");
	for (size_t i = 0; i < LEN; i++)
		mem[i] = (uint8_t)(i * 7 + 1);
	for (int i = 0; i < 4; i++)
		last[i] = counter(names[i]);

	a[0] = (uintptr_t)mem, a[1] = LEN, a[2] = 4096, a[3] = ACC_RW, a[4] = 0;
	if (ioctl(fd, ODP_REGISTER, a))
		return fail("register");
	step("registered 64 KiB (16 pages); nothing mapped yet", -1);

	if (xfer(fd, ODP_READ, a[4], mem, LEN, out))
		return fail("device read");
	for (size_t i = 0; i < LEN; i++)
		bad += out[i] != (uint8_t)(i * 7 + 1);
	if (step(bad ? "the device read it: WRONG DATA" : "the device read all 16 pages: data correct",
		 1) != PAGES)
		bad++, printf("odp_umem: expected 16 pages mapped by the fault\n");

	if (madvise(mem, LEN / 2, MADV_DONTNEED))
		return fail("madvise");
	if (step("madvise(DONTNEED) on the first 8 pages", 2) < 1)
		bad++, printf("odp_umem: expected an invalidation\n");

	if (xfer(fd, ODP_READ, a[4], mem, LEN, out))
		return fail("device read");
	for (size_t i = 0; i < LEN; i++)
		bad += out[i] != (i < LEN / 2 ? 0 : (uint8_t)(i * 7 + 1));
	if (step(bad ? "the device read again: WRONG DATA" : "the device read again: zeros, then the rest",
		 0) < 1)
		bad++, printf("odp_umem: expected a fault\n");

	memset(in, 0x5a, sizeof(in));
	if (xfer(fd, ODP_WRITE, a[4], mem, LEN, in))
		return fail("device write");
	for (size_t i = 0; i < LEN; i++)
		bad += mem[i] != 0x5a;
	step(bad ? "the device wrote: WRONG DATA" : "the device wrote 64 KiB: the process sees it", -1);

	if (ioctl(fd, ODP_UNREGISTER, &a[4]))
		return fail("unregister");
	step("unregistered", -1);
	close(fd);
	printf("odp_umem: %s\n", bad ? "FAILED: wrong data or counters" : "all data correct");
	return bad ? 1 : 0;
}
