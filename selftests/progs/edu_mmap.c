// SPDX-License-Identifier: GPL-2.0
/*
 * User-space test of kext/dma/coherent.rs's mmap (CoherentAllocation::mmap): /dev/xendma_edu
 * (test builds of xen_swiotlb_rs) maps a coherent buffer of two pages that QEMU's edu device
 * copies within on request. The CPU writes through the user mapping, the device copies, the CPU
 * reads the copy through the mapping.
 * Prints one KTAP line per check and "edu_mmap: N passed, M failed"; exits non-zero on failure.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct edu_copy {
	uint32_t src, dst, len, flags;
};

#define EDU_COPY _IOW('x', 1, uint32_t[4])
#define PAGE 4096
#define LEN (2 * PAGE)

static int passed, failed;

static void check(int ok, const char *what)
{
	printf("%s %d %s\n", ok ? "ok" : "not ok", passed + failed + 1, what);
	if (ok)
		passed++;
	else
		failed++;
}

static uint8_t pattern(unsigned int seed, size_t i)
{
	return (uint8_t)(i * 31 + seed) ^ (uint8_t)(i >> 8);
}

static int copy(int fd, uint32_t src, uint32_t dst, uint32_t len, uint32_t flags)
{
	struct edu_copy c = { src, dst, len, flags };

	return ioctl(fd, EDU_COPY, &c) ? -errno : 0;
}

/* Names the device the open bound the driver to ("# device BDF"), for callers that check whose
 * DMA ops it has. */
static void print_bound_device(void)
{
	DIR *d = opendir("/sys/bus/pci/drivers/xendma_edu");
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (strchr(e->d_name, ':'))
			printf("# device %s\n", e->d_name);
	if (d)
		closedir(d);
}

int main(void)
{
	int fd = open("/dev/xendma_edu", O_RDWR);
	uint8_t *p, *q, flipped;
	size_t i;
	int ok;

	/*
	 * Where the lane says the test device cannot exist (the production modules on the stock
	 * kernel), its absence is a skip, with the lane's reason; anywhere else it is a failure.
	 */
	if (getenv("XENDMA_NO_TESTDEV") && access("/dev/xendma_edu", F_OK) != 0) {
		printf("KTAP version 1\n1..0 # SKIP %s\n", getenv("XENDMA_NO_TESTDEV"));
		printf("edu_mmap: 0 passed, 0 failed, 1 skipped\n");
		return 4;
	}
	printf("KTAP version 1\n");
	check(fd >= 0, "open /dev/xendma_edu");
	if (fd < 0) {
		perror("open");
		goto out;
	}
	print_bound_device();
	check(open("/dev/xendma_edu", O_RDWR) < 0 && errno == EBUSY, "a second open is refused (EBUSY)");

	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	check(p != MAP_FAILED, "mmap of the two-page coherent buffer");
	if (p == MAP_FAILED)
		goto out;
	for (ok = 1, i = 0; i < LEN; i++)
		ok &= p[i] == 0;
	check(ok, "coherent memory starts zeroed");
	for (i = 0; i < 2048; i++)
		p[i] = pattern(7, i);
	check(copy(fd, 0, PAGE + 100, 2048, 0) == 0, "device copy of 2048 bytes");
	for (ok = 1, i = 0; i < 2048; i++)
		ok &= p[PAGE + 100 + i] == pattern(7, i);
	check(ok, "the device's copy is visible through the mapping");
	check(p[PAGE + 99] == 0 && p[PAGE + 2148] == 0, "bytes around the copy untouched");

	/* The second page alone, mapped at offset one page, is the same memory. */
	q = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, PAGE);
	check(q != MAP_FAILED && memcmp(q, p + PAGE, PAGE) == 0, "mmap at a page offset sees the same data");
	if (q != MAP_FAILED)
		munmap(q, PAGE);
	check(mmap(NULL, 3 * PAGE, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == ENXIO,
	      "mmap larger than the buffer fails (ENXIO)");
	check(mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 2 * PAGE) == MAP_FAILED && errno == ENXIO,
	      "mmap beyond the buffer fails (ENXIO)");

	check(copy(fd, 0, 0, 0, 0) == -EINVAL, "zero-length copy: EINVAL");
	for (i = 0; i < 3000; i++)
		p[i] = pattern(9, i);
	check(copy(fd, 0, PAGE, 3000, 0) == 0, "device copy of 3000 bytes (two transfers)");
	for (ok = 1, i = 0; i < 3000; i++)
		ok &= p[PAGE + i] == pattern(9, i);
	check(ok, "the two-transfer copy is exact");
	check(copy(fd, 0, 0, LEN + 1, 0) == -EINVAL, "copy longer than the buffer: EINVAL");
	check(copy(fd, LEN - 10, 0, 20, 0) == -EINVAL, "copy from beyond the buffer: EINVAL");
	check(copy(fd, 0, 0xffffffff, 20, 0) == -EINVAL, "copy to an overflowing offset: EINVAL");
	check(copy(fd, 0, 0, 20, 1) == -EINVAL, "unknown flags: EINVAL");
	check(ioctl(fd, _IO('x', 99)) < 0 && errno == ENOTTY, "unknown ioctl: ENOTTY");
	check(ioctl(fd, EDU_COPY, (void *)8) < 0 && errno == EFAULT, "bad user pointer: EFAULT");

	/* Closing the file while it is still mapped keeps the memory until munmap. */
	close(fd);
	flipped = pattern(9, 0) ^ 0xff;
	p[0] = flipped;
	check(p[PAGE] == pattern(9, 0) && p[0] == flipped, "the mapping outlives the file descriptor");
	munmap(p, LEN);
	fd = open("/dev/xendma_edu", O_RDWR);
	check(fd >= 0, "open again after close and munmap");
	if (fd >= 0)
		close(fd);
out:
	printf("edu_mmap: %d passed, %d failed\n", passed, failed);
	return failed || !passed;
}
