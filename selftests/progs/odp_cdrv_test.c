// SPDX-License-Identifier: GPL-2.0
/*
 * The test of odp_umem's C API (include/odp_umem.h) as a C driver uses it: loads odp_umem_cdrv.ko
 * (selftests/odp_cdrv, a driver of the edu device that knows odp_umem only through the header),
 * and has the device write into and read from this process's memory through the API's bus
 * addresses, checking every byte. Runs on the kernel's DMA ops (dma-direct, or swiotlb-xen in a
 * Xen PV guest), then, when xen_swiotlb_rs is loaded, on its ops with every mapping bounced
 * (force_bounce=1): there the negative controls show that a driver leaving out the API's syncs
 * loses the device's writes and feeds the device stale bytes, so that the positive cases prove
 * the syncs work. Works with the production modules (only the exported API is used).
 *
 * Prints one KTAP line per check and "odp_cdrv_test: N passed, M failed, K skipped"; exits 1 on
 * any failure, 4 when odp_umem is not loaded.
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../odp_cdrv/odp_umem_cdrv.h"
#include "ktap.h"

#define PAGE 4096UL
#define KO "/lib/xendma/cdrv/odp_umem_cdrv.ko"
#define DRV "/sys/bus/pci/drivers/odp_umem_cdrv"
#define SWIOTLB "/sys/module/xen_swiotlb_rs"
#define BOUNCES "/sys/kernel/debug/xen_swiotlb_rs/bounces"
#define ACC_R 1
#define ACC_RW 3
/* The dirty-tracking case's filesystem: ext2 (busybox's mke2fs) on the nvme disk. */
#define DISK "/dev/nvme0n1"
#define MNT "/tmp/odp_cdrv_disk"
#define DISK_FILE MNT "/device-written"
#define FILE_PAGES 4

static int finish(void)
{
	return ktap_finish("odp_cdrv_test");
}

static int write_file(const char *path, const char *val)
{
	int f = open(path, O_WRONLY), r = 0;

	if (f < 0)
		return -errno;
	if (write(f, val, strlen(val)) < 0)
		r = -errno;
	close(f);
	return r;
}

static long read_num(const char *path)
{
	char buf[64] = "";
	int f = open(path, O_RDONLY);
	ssize_t n;

	if (f < 0)
		return -1;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	return n > 0 ? strtol(buf, NULL, 0) : -1;
}

/* The PCI name of the device odp_umem_cdrv is bound to, waiting up to 10 s for a (re)bind. */
static int bound_device(char *bdf, size_t size)
{
	for (int i = 0; i < 100; i++) {
		DIR *d = opendir(DRV);
		struct dirent *e;

		while (d && (e = readdir(d))) {
			if (strchr(e->d_name, ':')) {
				snprintf(bdf, size, "%s", e->d_name);
				closedir(d);
				return 0;
			}
		}
		if (d)
			closedir(d);
		usleep(100000);
	}
	return -1;
}

static int xfer(int fd, unsigned long cmd, void *addr, uint64_t len, void *out, uint32_t flags,
		uint32_t seed)
{
	struct odp_cdrv_xfer x = {
		.addr = (uintptr_t)addr, .len = len, .out = (uintptr_t)out, .flags = flags, .seed = seed,
	};

	return ioctl(fd, cmd, &x) ? -errno : 0;
}

/* Whether [p, p + len) holds the device's pattern of seed s. */
static int holds_pattern(const uint8_t *p, uint64_t len, uint32_t s)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != odp_cdrv_pattern(s, i))
			return 0;
	return 1;
}

static int all(const uint8_t *p, uint64_t len, uint8_t v)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* Why the dirty-tracking case cannot run (NULL: the filesystem is mounted at MNT). */
static const char *disk_skip = "the disk was not prepared";

static int drop_caches(void)
{
	sync();
	return write_file("/proc/sys/vm/drop_caches", "3");
}

/* Makes an ext2 filesystem on the nvme disk and mounts it; sets disk_skip on failure. */
static void prepare_disk(void)
{
	struct stat st;
	int r;

	if (stat(DISK, &st) || !S_ISBLK(st.st_mode)) {
		disk_skip = "no nvme disk (" DISK ")";
		return;
	}
	mkdir(MNT, 0700);
	r = system("mke2fs -F " DISK " > /dev/null 2>&1");
	check(r == 0, "mke2fs on %s (exit status %d)", DISK, r);
	if (r) {
		disk_skip = "mke2fs failed";
		return;
	}
	r = mount(DISK, MNT, "ext2", 0, NULL) ? -errno : 0;
	if (r == -ENODEV) {
		disk_skip = "the kernel has no ext2 driver";
		return;
	}
	check(r == 0, "mount the ext2 filesystem on %s (%d)", DISK, r);
	if (!r)
		disk_skip = NULL;
}

/*
 * Dirty tracking through a real filesystem: a MAP_SHARED file on the nvme disk, written by the
 * device only (the CPU never touches the mapping), unmapped without msync. After sync, dropping
 * the caches and a remount, the file on the disk must hold the device's bytes: the kernel learns
 * that the pages changed only from odp_umem. With `bounced`, a write whose bytes the driver never
 * synced (ODP_CDRV_NOSYNC) must not be in the file: this negative control shows that the check
 * reads the disk, not a cached page.
 */
static void run_disk_case(const char *where, int bounced)
{
	const uint64_t size = FILE_PAGES * PAGE, off = PAGE + 300, len = 5000;
	const uint64_t ctl = 3 * PAGE + 16, ctl_len = 1000;
	static uint8_t buf[FILE_PAGES * PAGE];
	uint8_t *p;
	int f, dev, r, n;

	if (disk_skip) {
		skip("device writes reach the disk through a MAP_SHARED file", disk_skip);
		return;
	}
	memset(buf, 0x11, size);
	f = open(DISK_FILE, O_RDWR | O_CREAT | O_TRUNC, 0600);
	r = f >= 0 && pwrite(f, buf, size, 0) == (ssize_t)size && !fsync(f);
	check(r, "%s: a file of %d pages on the disk (%s)", where, FILE_PAGES, r ? "ok" : strerror(errno));
	if (f >= 0)
		close(f);
	if (!r)
		return;
	r = drop_caches();
	check(r == 0, "%s: drop the page cache, so the file's pages come from the disk (%d)", where, r);

	f = open(DISK_FILE, O_RDWR);
	p = f >= 0 ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0) : MAP_FAILED;
	dev = open("/dev/odp_umem_cdrv", O_RDWR);
	if (p == MAP_FAILED || dev < 0) {
		check(0, "%s: map the file and open the driver: %s", where, strerror(errno));
		goto out;
	}
	r = xfer(dev, ODP_CDRV_REG, p, size, NULL, ACC_RW, 0);
	check(r == 0, "%s: odp_umem_get over the MAP_SHARED file (%d)", where, r);
	r = r ?: xfer(dev, ODP_CDRV_WRITE, p + off, len, NULL, 0, 21);
	check(r == 0, "%s: the device wrote %lu bytes across pages 1 and 2 of the file (%d)", where,
	      (unsigned long)len, r);
	if (bounced) {
		r = xfer(dev, ODP_CDRV_WRITE, p + ctl, ctl_len, NULL, ODP_CDRV_NOSYNC, 22);
		check(r == 0, "%s: the device wrote page 3, the driver left out the sync (%d)", where, r);
	}
	n = ioctl(dev, ODP_CDRV_INVALIDATIONS, 0);
	r = munmap(p, size) ? -errno : 0;
	p = MAP_FAILED;
	check(r == 0 && ioctl(dev, ODP_CDRV_INVALIDATIONS, 0) > n,
	      "%s: munmap without msync invalidates the umem (%d)", where, r);
	close(dev);
	dev = -1;
	close(f);
	f = -1;

	r = drop_caches();
	r = r ?: umount(MNT) ? -errno : 0;
	r = r ?: mount(DISK, MNT, "ext2", 0, NULL) ? -errno : 0;
	check(r == 0, "%s: sync, drop the caches, remount (%d)", where, r);
	if (r) {
		disk_skip = "the filesystem could not be mounted again";
		return;
	}
	memset(buf, 0, size);
	f = open(DISK_FILE, O_RDONLY);
	r = f >= 0 && pread(f, buf, size, 0) == (ssize_t)size;
	check(r && all(buf, off, 0x11) && holds_pattern(buf + off, len, 21) &&
	      all(buf + off + len, (bounced ? ctl : size) - off - len, 0x11),
	      "%s: the file read back from the disk holds the device's %lu bytes, and only them", where,
	      (unsigned long)len);
	if (bounced)
		check(r && all(buf + ctl, size - ctl, 0x11),
		      "%s: negative control: the bytes the driver never synced are not on the disk", where);
out:
	if (p != MAP_FAILED)
		munmap(p, size);
	if (dev >= 0)
		close(dev);
	if (f >= 0)
		close(f);
	unlink(DISK_FILE);
}

/*
 * A page the device read, then writes: the read fault left the CPU's entry of the clean
 * MAP_SHARED file page read-only (ext2 tracks writes with page_mkwrite), and the write fault
 * upgrades it in place, without an invalidation. odp_umem maps the page again for writing, at a
 * new bus address when it bounces, and must tell the driver before the old mapping goes.
 */
static void run_upgrade_case(const char *where)
{
	static uint8_t buf[PAGE];
	uint8_t *p = MAP_FAILED;
	int f, dev = -1, r;
	long n0, n1;

	if (disk_skip) {
		skip("a mapping replaced for more access is invalidated first", disk_skip);
		return;
	}
	memset(buf, 0x22, PAGE);
	f = open(DISK_FILE, O_RDWR | O_CREAT | O_TRUNC, 0600);
	r = f >= 0 && pwrite(f, buf, PAGE, 0) == (ssize_t)PAGE && !fsync(f) && !drop_caches();
	check(r, "%s: upgrade: a clean file page on the disk (%s)", where, r ? "ok" : strerror(errno));
	if (!r)
		goto out;
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
	dev = open("/dev/odp_umem_cdrv", O_RDWR);
	if (p == MAP_FAILED || dev < 0) {
		check(0, "%s: upgrade: map the file and open the driver: %s", where, strerror(errno));
		goto out;
	}
	r = xfer(dev, ODP_CDRV_REG, p, PAGE, NULL, ACC_RW, 0);
	r = r ?: xfer(dev, ODP_CDRV_READ, p + 8, 64, buf, 0, 0);
	check(r == 0 && all(buf, 64, 0x22), "%s: upgrade: the device read the page (%d)", where, r);
	n0 = ioctl(dev, ODP_CDRV_INVALIDATIONS, 0);
	r = xfer(dev, ODP_CDRV_WRITE, p + 8, 64, NULL, 0, 23);
	n1 = ioctl(dev, ODP_CDRV_INVALIDATIONS, 0);
	check(r == 0 && holds_pattern(p + 8, 64, 23) && all(p + 72, PAGE - 72, 0x22),
	      "%s: upgrade: then wrote it, and the CPU sees the write (%d)", where, r);
	check(n0 >= 0 && n1 == n0 + 1,
	      "%s: upgrade: the driver was told before the read mapping was replaced (%ld -> %ld)",
	      where, n0, n1);
out:
	if (p != MAP_FAILED)
		munmap(p, PAGE);
	if (dev >= 0)
		close(dev);
	if (f >= 0)
		close(f);
	unlink(DISK_FILE);
}

/*
 * The cases of one configuration (`where`: which DMA ops). With `bounced` every mapping bounces,
 * and the negative controls run.
 */
static void run_cases(const char *where, int bounced)
{
	const uint64_t len = 6 * PAGE;
	uint8_t *p, *ro, out[8192];
	long b0 = read_num(BOUNCES);
	int fd, r;

	fd = open("/dev/odp_umem_cdrv", O_RDWR);
	check(fd >= 0, "%s: open /dev/odp_umem_cdrv (%s)", where, fd < 0 ? strerror(errno) : "ok");
	if (fd < 0)
		return;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		check(0, "%s: mmap %lu bytes: %s", where, (unsigned long)len, strerror(errno));
		close(fd);
		return;
	}
	memset(p, 0x11, len);

	/* Errors before registration, then the registration. */
	r = xfer(fd, ODP_CDRV_WRITE, p, 64, NULL, 0, 1);
	check(r == -ENOENT, "%s: a transfer before registering is refused with ENOENT (%d)", where, r);
	r = xfer(fd, ODP_CDRV_REG, p, len, NULL, 0, 0);
	check(r == -EINVAL, "%s: odp_umem_get with no access bits: EINVAL (%d)", where, r);
	r = xfer(fd, ODP_CDRV_REG, p + 1, len, NULL, ACC_RW, 0);
	check(r == -EINVAL, "%s: odp_umem_get of a misaligned start: EINVAL (%d)", where, r);
	r = xfer(fd, ODP_CDRV_REG, p, len, NULL, ACC_RW, 0);
	check(r == 0, "%s: odp_umem_get of %lu bytes, read-write (%d)", where, (unsigned long)len, r);
	if (r) {
		munmap(p, len);
		close(fd);
		return;
	}
	r = xfer(fd, ODP_CDRV_REG, p, len, NULL, ACC_RW, 0);
	check(r == -EBUSY, "%s: a second umem on the file: EBUSY (%d)", where, r);

	/* The device writes 5000 bytes across a page boundary; the bytes around stay. */
	r = xfer(fd, ODP_CDRV_WRITE, p + 100, 5000, NULL, 0, 7);
	check(r == 0 && holds_pattern(p + 100, 5000, 7) && all(p, 100, 0x11) &&
	      all(p + 5100, 2 * PAGE - 5100, 0x11),
	      "%s: the device wrote 5000 bytes at offset 100 and the process reads them (%d)", where,
	      r);

	/* The CPU writes pages already mapped (0 and 1), then the device reads them. */
	for (int i = 0; i < 6000; i++)
		p[2000 + i] = (uint8_t)(i * 7 + 3);
	r = xfer(fd, ODP_CDRV_READ, p + 2000, 6000, out, 0, 0);
	check(r == 0 && !memcmp(out, p + 2000, 6000),
	      "%s: the device read 6000 bytes the process wrote after they were mapped (%d)", where,
	      r);

	/* Pages 2 and 3, never mapped before: written by the device, read back by the device. */
	r = xfer(fd, ODP_CDRV_WRITE, p + 2 * PAGE, 2 * PAGE, NULL, 0, 9);
	check(r == 0 && holds_pattern(p + 2 * PAGE, 2 * PAGE, 9),
	      "%s: the device wrote two fresh pages (%d)", where, r);
	r = xfer(fd, ODP_CDRV_READ, p + 2 * PAGE, 2 * PAGE, out, 0, 0);
	check(r == 0 && holds_pattern(out, 2 * PAGE, 9),
	      "%s: the device read back what it wrote (%d)", where, r);

	if (bounced) {
		long b1 = read_num(BOUNCES);

		if (b0 < 0 || b1 < 0)
			skip("the mappings bounced", "xen_swiotlb_rs's debugfs counters are not readable");
		else
			check(b1 > b0, "%s: the mappings bounced (bounces %ld -> %ld)", where, b0, b1);
		/* Negative control 1: no sync_for_cpu, so page 4 keeps its bytes. */
		r = xfer(fd, ODP_CDRV_WRITE, p + 4 * PAGE, 1000, NULL, ODP_CDRV_NOSYNC, 11);
		check(r == 0 && all(p + 4 * PAGE, 1000, 0x11),
		      "%s: negative control: without odp_umem_sync_for_cpu the process does not see "
		      "the device's write (%d)", where, r);
		/* The same with the sync: the bytes arrive. */
		r = xfer(fd, ODP_CDRV_WRITE, p + 4 * PAGE, 1000, NULL, 0, 12);
		check(r == 0 && holds_pattern(p + 4 * PAGE, 1000, 12),
		      "%s: with odp_umem_sync_for_cpu they arrive (%d)", where, r);
		/* Negative control 2: the CPU rewrites page 4; without sync_for_device the device
		 * still reads what it wrote itself. */
		memset(p + 4 * PAGE, 0x5a, 1000);
		r = xfer(fd, ODP_CDRV_READ, p + 4 * PAGE, 1000, out, ODP_CDRV_NOSYNC, 0);
		check(r == 0 && holds_pattern(out, 1000, 12),
		      "%s: negative control: without odp_umem_sync_for_device the device reads stale "
		      "bytes (%d)", where, r);
		r = xfer(fd, ODP_CDRV_READ, p + 4 * PAGE, 1000, out, 0, 0);
		check(r == 0 && all(out, 1000, 0x5a),
		      "%s: with odp_umem_sync_for_device it reads the process's (%d)", where, r);
	}

	/* Bad requests: each refused with its errno, the umem still works after. */
	r = xfer(fd, ODP_CDRV_WRITE, p + len - 8, 64, NULL, 0, 1);
	check(r == -ERANGE, "%s: a write past the umem's end: ERANGE (%d)", where, r);
	r = xfer(fd, ODP_CDRV_WRITE, (void *)(UINTPTR_MAX - 10), 64, NULL, 0, 1);
	check(r == -EOVERFLOW || r == -ERANGE, "%s: a wrapping range: EOVERFLOW (%d)", where, r);
	r = xfer(fd, ODP_CDRV_UNMAP, p, 0, NULL, 0, 0);
	check(r == -EINVAL, "%s: odp_umem_unmap of zero bytes: EINVAL (%d)", where, r);
	r = xfer(fd, ODP_CDRV_UNMAP, p + len, PAGE, NULL, 0, 0);
	check(r == -ERANGE, "%s: odp_umem_unmap past the end: ERANGE (%d)", where, r);
	r = xfer(fd, ODP_CDRV_WRITE, p, 64, NULL, 0x7, 1);
	check(r == -EINVAL, "%s: unknown flags: EINVAL (%d)", where, r);
	r = xfer(fd, ODP_CDRV_READ, p, 64, (void *)16, 0, 0);
	check(r == -EFAULT, "%s: a read into a bad user buffer: EFAULT (%d)", where, r);
	r = ioctl(fd, _IO('O', 0x7f), 0) ? -errno : 0;
	check(r == -ENOTTY, "%s: an unknown command: ENOTTY (%d)", where, r);
	r = xfer(fd, ODP_CDRV_WRITE, p + PAGE, 64, NULL, 0, 13);
	check(r == 0 && holds_pattern(p + PAGE, 64, 13), "%s: the umem works after them (%d)", where,
	      r);

	/* The process's mapping changes under the device: the driver is told, the hole faults. */
	r = ioctl(fd, ODP_CDRV_INVALIDATIONS, 0);
	if (munmap(p + 5 * PAGE, PAGE)) {
		check(0, "%s: munmap: %s", where, strerror(errno));
	} else {
		int n = ioctl(fd, ODP_CDRV_INVALIDATIONS, 0);

		check(n > r, "%s: munmap reaches the driver's invalidate callback (%d -> %d)", where,
		      r, n);
		r = xfer(fd, ODP_CDRV_WRITE, p + 5 * PAGE, 64, NULL, 0, 1);
		check(r == -EFAULT, "%s: the device writing the hole: EFAULT (%d)", where, r);
	}
	r = xfer(fd, ODP_CDRV_UNMAP, p, 5 * PAGE, NULL, 0, 0);
	check(r == 0, "%s: odp_umem_unmap of the rest (%d)", where, r);
	r = xfer(fd, ODP_CDRV_READ, p + 100, 5000, out, 0, 0);
	check(r == 0 && !memcmp(out, p + 100, 5000),
	      "%s: after the unmap, a fault maps the pages again and the device reads them (%d)",
	      where, r);
	close(fd);

	/* A read-only umem: the device may read, a write is refused. */
	ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fd = open("/dev/odp_umem_cdrv", O_RDWR);
	if (ro != MAP_FAILED && fd >= 0) {
		r = xfer(fd, ODP_CDRV_REG, ro, PAGE, NULL, ACC_R, 0);
		check(r == 0, "%s: odp_umem_get of a read-only page (%d)", where, r);
		r = xfer(fd, ODP_CDRV_WRITE, ro, 64, NULL, 0, 1);
		check(r == -EPERM, "%s: a device write to a read-only umem: EPERM (%d)", where, r);
		r = xfer(fd, ODP_CDRV_READ, ro, 512, out, 0, 0);
		check(r == 0 && all(out, 512, 0), "%s: the device reads the zero page (%d)", where, r);
	} else {
		check(0, "%s: read-only mapping or open failed: %s", where, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	if (ro != MAP_FAILED)
		munmap(ro, PAGE);
	munmap(p, len);
}

int main(void)
{
	char bdf[256], old_force[32] = "0";
	struct stat st;
	int ko, r;

	if (stat("/sys/module/odp_umem", &st)) {
		printf("odp_cdrv_test: # SKIP odp_umem is not loaded\n");
		return 4;
	}
	ko = open(KO, O_RDONLY | O_CLOEXEC);
	check(ko >= 0, "the C driver's module is in the image (%s)", KO);
	if (ko < 0)
		return finish();
	r = syscall(SYS_finit_module, ko, "", 0) ? -errno : 0;
	close(ko);
	check(r == 0, "insmod odp_umem_cdrv.ko, which uses odp_umem's exported API (%d)", r);
	if (r)
		return finish();
	r = syscall(SYS_delete_module, "odp_umem", O_NONBLOCK) ? -errno : 0;
	check(r == -EWOULDBLOCK || r == -EBUSY,
	      "odp_umem cannot be unloaded while a driver uses its API (%d)", r);

	if (bound_device(bdf, sizeof(bdf))) {
		skip("the C API on the edu device", "no edu device was free for odp_umem_cdrv");
	} else {
		printf("# odp_umem_cdrv drives %s\n", bdf);
		prepare_disk();
		run_cases("kernel's ops", 0);
		run_disk_case("kernel's ops", 0);
		run_upgrade_case("kernel's ops");
		if (!stat(SWIOTLB "/attach", &st)) {
			int f = open(SWIOTLB "/parameters/force_bounce", O_RDONLY);
			ssize_t n = f >= 0 ? read(f, old_force, sizeof(old_force) - 1) : -1;

			if (f >= 0)
				close(f);
			old_force[n > 0 ? n : 0] = 0;
			if (n <= 0)
				strcpy(old_force, "0");
			r = write_file(SWIOTLB "/parameters/force_bounce", "1");
			check(r == 0, "force_bounce=1 (%d)", r);
			r = write_file(SWIOTLB "/attach", bdf);
			check(r == 0, "attach %s to xen_swiotlb_rs (%d)", bdf, r);
			if (!r && !bound_device(bdf, sizeof(bdf))) {
				run_cases("xen_swiotlb_rs's ops, forced bounce", 1);
				run_disk_case("xen_swiotlb_rs's ops, forced bounce", 1);
				run_upgrade_case("xen_swiotlb_rs's ops, forced bounce");
			} else if (!r) {
				check(0, "odp_umem_cdrv is bound again after the attach");
			}
			if (!r) {
				r = write_file(SWIOTLB "/detach", bdf);
				check(r == 0, "detach %s (%d)", bdf, r);
			}
			write_file(SWIOTLB "/parameters/force_bounce", old_force);
		} else {
			skip("the C API on xen_swiotlb_rs's ops", "xen_swiotlb_rs is not loaded");
		}
	}
	if (!disk_skip)
		umount(MNT);
	r = syscall(SYS_delete_module, "odp_umem_cdrv", O_NONBLOCK) ? -errno : 0;
	check(r == 0, "rmmod odp_umem_cdrv (%d)", r);
	return finish();
}
