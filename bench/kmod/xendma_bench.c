// SPDX-License-Identifier: GPL-2.0
/*
 * xendma_bench: the in-guest half of `make bench` (Documentation/bench.rst) that the kernel's
 * dma_map_benchmark does not cover:
 *
 * - the physical floor of a bounce buffer: how long a plain memcpy() of a granule takes;
 * - pool pressure: many outstanding dma_map_single() mappings of mixed sizes held at a given
 *   occupancy of the bouncing pool (ours or the kernel's swiotlb), with maps/s and failures;
 * - ODP: faulting a user region through odp_umem's C API, against pin_user_pages_fast() +
 *   dma_map_page() (the pinned model) as the reference.
 *
 * One misc device, /dev/xendma_bench, one user at a time; the ioctls are in xendma_bench.h.
 * Benchmark code, not a driver: no device is bound, the PCI devices named only lend their
 * struct device (and so their DMA ops and mask) to the mappings, and no DMA is started.
 */

#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/prandom.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include <odp_umem.h>

#include "xendma_bench.h"

#define XB_MAX_REGION (64UL << 20)
#define XB_SLOT_SIZE 2048
#define XB_MAX_THREADS 8
/* The cold memcpy destination: 8 blocks of 4 MiB from the linear map (as a bounce pool is). */
#define XB_COLD_ORDER 10
#define XB_COLD_BLOCKS 8
/* The largest pool-pressure mapping: 32 pages. */
#define XB_PRESSURE_ORDER 5

/* One open file at a time; its ioctls are serialised by xb_lock. */
static atomic_t xb_open_count = ATOMIC_INIT(0);
static DEFINE_MUTEX(xb_lock);

/* The region of XB_REGION, guarded by xb_lock. */
static struct {
	struct pci_dev *pdev;
	struct odp_umem *umem;
	unsigned long start, len;
	struct page **pages;	/* GUP: pinned page per base page, NULL if not pinned */
	dma_addr_t *dma;	/* GUP: its bus address */
} xb;

static atomic_t xb_invalidations = ATOMIC_INIT(0);

/* ---- memcpy floor ---- */

struct xb_copier {
	struct task_struct *task;
	void *src, *dst[XB_COLD_BLOCKS];
	size_t bytes;
	bool cold, call;
	size_t offset;	/* hot: the destination this far into its block */
	u64 ns_budget, copies, ns;
	atomic_t *ready;
	int nthreads;
	struct completion done;
};

/*
 * The kernel's out-of-line memcpy() (arch/x86/lib/memcpy_64.S: "rep movsb" on CPUs with FSRM,
 * an unrolled 8-byte loop otherwise), which Rust's copy_nonoverlapping calls, reached through a
 * pointer so that GCC cannot expand it inline; a plain memcpy() call in C is expanded by GCC
 * (here to "rep movsb"), which is what kernel/dma/swiotlb.c's swiotlb_bounce() does.
 */
static void *(*volatile xb_memcpy_call)(void *, const void *, size_t) = memcpy;

static int xb_copier_fn(void *data)
{
	struct xb_copier *c = data;
	size_t per_block = (PAGE_SIZE << XB_COLD_ORDER) / c->bytes;
	unsigned int block = 0;
	size_t slot = 0;
	u64 start, now, n = 0;

	/* Start together, so that the threads' copies overlap. */
	atomic_inc(c->ready);
	while (atomic_read(c->ready) < c->nthreads)
		cpu_relax();
	start = ktime_get_ns();
	do {
		unsigned int i;

		for (i = 0; i < 16; i++) {
			void *dst = c->dst[0] + c->offset;

			if (c->cold) {
				dst = c->dst[block] + slot * c->bytes;
				if (++slot == per_block) {
					slot = 0;
					block = (block + 1) % XB_COLD_BLOCKS;
				}
			}
			if (c->call)
				xb_memcpy_call(dst, c->src, c->bytes);
			else
				memcpy(dst, c->src, c->bytes);
		}
		n += 16;
		now = ktime_get_ns();
		cond_resched();
	} while (now - start < c->ns_budget);
	c->copies = n;
	c->ns = now - start;
	complete(&c->done);
	while (!kthread_should_stop())
		schedule_timeout_interruptible(1);
	return 0;
}

static void xb_copier_free(struct xb_copier *c)
{
	unsigned int b;

	for (b = 0; b < XB_COLD_BLOCKS; b++)
		if (c->dst[b])
			__free_pages(virt_to_page(c->dst[b]), XB_COLD_ORDER);
	if (c->src)
		free_pages_exact(c->src, c->bytes);
}

static int xb_memcpy(u64 *a)
{
	struct xb_copier *c;
	atomic_t ready = ATOMIC_INIT(0);
	int nthreads = a[1], i, cpu, started = 0, ret = 0;
	u64 copies = 0, ps_sum = 0;

	/*
	 * Flags: 1 cold, 2 out-of-line memcpy(), 4 hot destination one page into its block; bits 3
	 * and up, if not 0: the hot destination that many pages into its block instead.
	 */
	u64 offset = (a[3] >> 3) ? (a[3] >> 3) * PAGE_SIZE : (a[3] & 4) ? PAGE_SIZE : 0;

	if (!a[0] || a[0] > (PAGE_SIZE << XB_COLD_ORDER) - PAGE_SIZE || nthreads < 1 ||
	    (a[3] >> 3) >= (1UL << XB_COLD_ORDER) || offset + a[0] > (PAGE_SIZE << XB_COLD_ORDER) ||
	    nthreads > XB_MAX_THREADS || nthreads > num_online_cpus() || !a[2] || a[2] > 60000)
		return -EINVAL;
	c = kcalloc(nthreads, sizeof(*c), GFP_KERNEL);
	if (!c)
		return -ENOMEM;
	for (i = 0; i < nthreads; i++) {
		unsigned int b;

		c[i].bytes = a[0];
		c[i].cold = a[3] & 1;
		c[i].call = a[3] & 2;
		c[i].offset = offset;
		c[i].ns_budget = a[2] * NSEC_PER_MSEC;
		c[i].ready = &ready;
		c[i].nthreads = nthreads;
		init_completion(&c[i].done);
		c[i].src = alloc_pages_exact(c[i].bytes, GFP_KERNEL);
		if (!c[i].src) {
			ret = -ENOMEM;
			goto out;
		}
		memset(c[i].src, 0x66, c[i].bytes);
		for (b = 0; b < (c[i].cold ? XB_COLD_BLOCKS : 1); b++) {
			struct page *p = alloc_pages(GFP_KERNEL, XB_COLD_ORDER);

			if (!p) {
				ret = -ENOMEM;
				goto out;
			}
			c[i].dst[b] = page_address(p);
		}
	}
	cpu = cpumask_first(cpu_online_mask);
	for (i = 0; i < nthreads; i++) {
		c[i].task = kthread_create(xb_copier_fn, &c[i], "xb_memcpy/%d", cpu);
		if (IS_ERR(c[i].task)) {
			ret = PTR_ERR(c[i].task);
			c[i].task = NULL;
			/* Let the started ones through their barrier. */
			atomic_add(nthreads - i, &ready);
			break;
		}
		kthread_bind(c[i].task, cpu);
		wake_up_process(c[i].task);
		started++;
		cpu = cpumask_next(cpu, cpu_online_mask);
	}
	for (i = 0; i < started; i++) {
		wait_for_completion(&c[i].done);
		kthread_stop(c[i].task);
		copies += c[i].copies;
		ps_sum += div64_u64(c[i].ns * 1000, c[i].copies ?: 1);
	}
	if (!ret) {
		a[4] = copies;
		/* Picoseconds per copy, the mean over threads. */
		a[5] = div64_u64(ps_sum, nthreads);
	}
out:
	for (i = 0; i < nthreads; i++)
		xb_copier_free(&c[i]);
	kfree(c);
	return ret;
}

/* ---- pool pressure ---- */

struct xb_mapping {
	dma_addr_t addr;
	u32 size;
};

static u32 xb_slots(u32 size)
{
	return DIV_ROUND_UP(size, XB_SLOT_SIZE);
}

static struct pci_dev *xb_pci_get(u64 domain, u64 bus, u64 devfn)
{
	if (domain > 0xffff || bus > 0xff || devfn > 0xff)
		return NULL;
	return pci_get_domain_bus_and_slot(domain, bus, devfn);
}

static int xb_pressure(u64 *a)
{
	unsigned long attrs = DMA_ATTR_NO_WARN;
	u64 target, used = 0, attempts = 0, fails = 0, ok = 0, fill_fails = 0, start, elapsed;
	struct xb_mapping *m;
	struct rnd_state rnd;
	struct pci_dev *pdev;
	struct device *dev;
	struct page *buf;
	size_t n = 0, cap;
	void *cpu;
	int ret = 0;

	if (!a[3] || a[3] > (1 << 22) || !a[4] || a[4] > 100 || !a[5] || a[5] > 60000)
		return -EINVAL;
	pdev = xb_pci_get(a[0], a[1], a[2]);
	if (!pdev)
		return -ENODEV;
	dev = &pdev->dev;
	cap = a[3];
	m = kvmalloc_array(cap, sizeof(*m), GFP_KERNEL);
	buf = alloc_pages(GFP_KERNEL, XB_PRESSURE_ORDER);
	if (!m || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	cpu = page_address(buf);
	memset(cpu, 0x5a, PAGE_SIZE << XB_PRESSURE_ORDER);
	prandom_seed_state(&rnd, a[6]);
	target = div_u64(a[3] * a[4], 100);

	/* Fill to the target occupancy. */
	while (used < target && n < cap) {
		u32 size = PAGE_SIZE << (prandom_u32_state(&rnd) % (XB_PRESSURE_ORDER + 1));
		dma_addr_t d = dma_map_single_attrs(dev, cpu, size, DMA_TO_DEVICE, attrs);

		if (dma_mapping_error(dev, d)) {
			if (++fill_fails > 64)
				break;
			continue;
		}
		m[n].addr = d;
		m[n++].size = size;
		used += xb_slots(size);
	}

	/* Steady state: free one at random, refill to the target. */
	start = ktime_get_ns();
	do {
		unsigned int round;

		if (n) {
			size_t i = prandom_u32_state(&rnd) % n;

			dma_unmap_single_attrs(dev, m[i].addr, m[i].size, DMA_TO_DEVICE, attrs);
			used -= xb_slots(m[i].size);
			m[i] = m[--n];
		}
		for (round = 0; round < 4 && used < target && n < cap; round++) {
			u32 size = PAGE_SIZE << (prandom_u32_state(&rnd) % (XB_PRESSURE_ORDER + 1));
			dma_addr_t d = dma_map_single_attrs(dev, cpu, size, DMA_TO_DEVICE, attrs);

			attempts++;
			if (dma_mapping_error(dev, d)) {
				fails++;
				continue;
			}
			ok++;
			m[n].addr = d;
			m[n++].size = size;
			used += xb_slots(size);
		}
		elapsed = ktime_get_ns() - start;
		if ((attempts & 255) == 0)
			cond_resched();
	} while (elapsed < a[5] * NSEC_PER_MSEC);

	a[7] = attempts;
	a[8] = fails;
	a[9] = div64_u64(ok * NSEC_PER_SEC, elapsed ?: 1);
	a[10] = used;
	a[11] = n;
	a[12] = fill_fails;
	while (n) {
		n--;
		dma_unmap_single_attrs(dev, m[n].addr, m[n].size, DMA_TO_DEVICE, attrs);
	}
out:
	if (buf)
		__free_pages(buf, XB_PRESSURE_ORDER);
	kvfree(m);
	pci_dev_put(pdev);
	return ret;
}

/* ---- ODP and the pinned reference ---- */

static void xb_invalidate(void *priv, unsigned long start, unsigned long end)
{
	atomic_inc(&xb_invalidations);
}

static bool xb_in_region(u64 addr, u64 len)
{
	return xb.pdev && len && PAGE_ALIGNED(addr) && PAGE_ALIGNED(len) && addr >= xb.start &&
	       len <= xb.len && addr - xb.start <= xb.len - len;
}

static void xb_gup_unpin(unsigned long addr, unsigned long len)
{
	unsigned long i = (addr - xb.start) >> PAGE_SHIFT, end = i + (len >> PAGE_SHIFT);

	for (; i < end; i++) {
		if (!xb.pages[i])
			continue;
		dma_unmap_page(&xb.pdev->dev, xb.dma[i], PAGE_SIZE, DMA_TO_DEVICE);
		unpin_user_page(xb.pages[i]);
		xb.pages[i] = NULL;
	}
}

static void xb_release(void)
{
	if (xb.umem)
		odp_umem_release(xb.umem);
	if (xb.pages)
		xb_gup_unpin(xb.start, xb.len);
	kvfree(xb.pages);
	kvfree(xb.dma);
	pci_dev_put(xb.pdev);
	memset(&xb, 0, sizeof(xb));
}

static int xb_region(u64 *a)
{
	struct odp_umem *umem;
	unsigned long n;

	if (xb.pdev)
		return -EBUSY;
	if (!a[4] || a[4] > XB_MAX_REGION || !PAGE_ALIGNED(a[3]) || !PAGE_ALIGNED(a[4]))
		return -EINVAL;
	xb.pdev = xb_pci_get(a[0], a[1], a[2]);
	if (!xb.pdev)
		return -ENODEV;
	n = a[4] >> PAGE_SHIFT;
	xb.pages = kvcalloc(n, sizeof(*xb.pages), GFP_KERNEL);
	xb.dma = kvcalloc(n, sizeof(*xb.dma), GFP_KERNEL);
	if (!xb.pages || !xb.dma) {
		xb_release();
		return -ENOMEM;
	}
	if (a[5]) {
		umem = odp_umem_get(&xb.pdev->dev, a[3], a[4], PAGE_SHIFT, ODP_UMEM_READ,
				    xb_invalidate, NULL);
		if (IS_ERR(umem)) {
			xb_release();
			return PTR_ERR(umem);
		}
		xb.umem = umem;
	}
	xb.start = a[3];
	xb.len = a[4];
	return 0;
}

static int xb_odp_fault(u64 *a)
{
	u64 addr, end, t0;
	dma_addr_t sum = 0;
	int ret;

	if (!xb_in_region(a[0], a[1]) || !a[2] || !PAGE_ALIGNED(a[2]))
		return -EINVAL;
	t0 = ktime_get_ns();
	for (addr = a[0], end = a[0] + a[1]; addr < end; addr += a[2]) {
		u64 len = min(a[2], end - addr), p;

		ret = odp_umem_map_and_lock(xb.umem, addr, len, ODP_UMEM_READ);
		if (ret)
			return ret;
		/* What a driver's fault handler does next: read each page's bus address. */
		for (p = addr; p < addr + len; p += PAGE_SIZE) {
			dma_addr_t d = odp_umem_dma_addr(xb.umem, p);

			if (d == DMA_MAPPING_ERROR) {
				odp_umem_unlock(xb.umem);
				return -EIO;
			}
			sum += d;
		}
		odp_umem_unlock(xb.umem);
	}
	a[3] = ktime_get_ns() - t0;
	/* Keep the loop over the addresses. */
	return sum ? 0 : -EIO;
}

static int xb_gup_pin(u64 *a)
{
	struct device *dev;
	u64 addr, end, t0;
	int ret = 0;

	if (!xb_in_region(a[0], a[1]) || !a[2] || !PAGE_ALIGNED(a[2]))
		return -EINVAL;
	dev = &xb.pdev->dev;
	t0 = ktime_get_ns();
	for (addr = a[0], end = a[0] + a[1]; addr < end; addr += a[2]) {
		unsigned long first = (addr - xb.start) >> PAGE_SHIFT, i;
		int want = min(a[2], end - addr) >> PAGE_SHIFT, got;

		for (i = 0; i < want; i++)
			if (xb.pages[first + i])
				return -EEXIST;
		got = pin_user_pages_fast(addr, want, 0, &xb.pages[first]);
		if (got != want) {
			if (got > 0)
				unpin_user_pages(&xb.pages[first], got);
			for (i = 0; i < want; i++)
				xb.pages[first + i] = NULL;
			return got < 0 ? got : -EFAULT;
		}
		for (i = first; i < first + want; i++) {
			xb.dma[i] = dma_map_page(dev, xb.pages[i], 0, PAGE_SIZE, DMA_TO_DEVICE);
			if (dma_mapping_error(dev, xb.dma[i])) {
				unpin_user_page(xb.pages[i]);
				xb.pages[i] = NULL;
				ret = -ENOMEM;
			}
		}
		if (ret)
			return ret;
	}
	a[3] = ktime_get_ns() - t0;
	return 0;
}

static int xb_gup_unpin_ioctl(u64 *a)
{
	u64 t0;

	if (!xb_in_region(a[0], a[1]))
		return -EINVAL;
	t0 = ktime_get_ns();
	xb_gup_unpin(a[0], a[1]);
	a[2] = ktime_get_ns() - t0;
	return 0;
}

/* ---- placement: a dma_map_benchmark loop on a buffer placed by the caller ---- */

#define XB_PLACE_ORDER 10
#define XB_PLACE_SEEN 64

static int xb_place(u64 *a)
{
	static const enum dma_data_direction dirs[] = {
		DMA_BIDIRECTIONAL, DMA_TO_DEVICE, DMA_FROM_DEVICE
	};
	u64 pairs = 0, ns = 0, map_ns = 0, start, seen = 0;
	dma_addr_t *addrs;
	enum dma_data_direction dir;
	struct pci_dev *pdev;
	struct device *dev;
	struct page *block;
	size_t size;
	void *buf;
	int ret = 0;

	/* a[3] is checked first: the offset's bound cannot wrap. */
	if (!a[3] || a[3] > 64 || a[4] > 2 || a[5] > (1UL << XB_PLACE_ORDER) - a[3] ||
	    !a[6] || a[6] > 60000)
		return -EINVAL;
	pdev = xb_pci_get(a[0], a[1], a[2]);
	if (!pdev)
		return -ENODEV;
	dev = &pdev->dev;
	size = a[3] * PAGE_SIZE;
	dir = dirs[a[4]];
	addrs = kcalloc(XB_PLACE_SEEN, sizeof(*addrs), GFP_KERNEL);
	block = alloc_pages(GFP_KERNEL, XB_PLACE_ORDER);
	if (!addrs || !block) {
		ret = -ENOMEM;
		goto out;
	}
	buf = page_address(block) + a[5] * PAGE_SIZE;
	memset(buf, 0x66, size);
	start = ktime_get_ns();
	do {
		u64 t0, t1, t2;
		dma_addr_t d;
		u64 i;

		if (dir != DMA_FROM_DEVICE)
			memset(buf, 0x66, size);
		t0 = ktime_get_ns();
		d = dma_map_single(dev, buf, size, dir);
		t1 = ktime_get_ns();
		if (dma_mapping_error(dev, d)) {
			ret = -ENOMEM;
			break;
		}
		dma_unmap_single(dev, d, size, dir);
		t2 = ktime_get_ns();
		ns += t2 - t0;
		map_ns += t1 - t0;
		pairs++;
		a[9] = d;
		for (i = 0; i < seen && addrs[i] != d; i++)
			;
		if (i == seen && seen < XB_PLACE_SEEN)
			addrs[seen++] = d;
		if ((pairs & 255) == 0)
			cond_resched();
	} while (ktime_get_ns() - start < a[6] * NSEC_PER_MSEC);
	a[7] = pairs;
	a[8] = div64_u64(ns * 1000, pairs ?: 1);
	a[10] = page_to_phys(block) + a[5] * PAGE_SIZE;
	a[11] = seen;
	a[12] = div64_u64(map_ns * 1000, pairs ?: 1);
out:
	if (block)
		__free_pages(block, XB_PLACE_ORDER);
	kfree(addrs);
	pci_dev_put(pdev);
	return ret;
}

/* ---- the misc device ---- */

static int xb_open(struct inode *inode, struct file *file)
{
	return atomic_cmpxchg(&xb_open_count, 0, 1) == 0 ? 0 : -EBUSY;
}

static int xb_close(struct inode *inode, struct file *file)
{
	mutex_lock(&xb_lock);
	xb_release();
	mutex_unlock(&xb_lock);
	atomic_set(&xb_open_count, 0);
	return 0;
}

static long xb_dispatch(unsigned int cmd, u64 *a)
{
	switch (cmd) {
	case XB_MEMCPY:
		return xb_memcpy(a);
	case XB_PRESSURE:
		return xb_pressure(a);
	case XB_REGION:
		return xb_region(a);
	case XB_ODP_FAULT:
		return xb.umem ? xb_odp_fault(a) : -ENOENT;
	case XB_ODP_UNMAP:
		return xb.umem ? odp_umem_unmap(xb.umem, a[0], a[1]) : -ENOENT;
	case XB_ODP_INVALIDATIONS:
		return atomic_read(&xb_invalidations);
	case XB_RELEASE:
		xb_release();
		return 0;
	case XB_GUP_PIN:
		return xb_gup_pin(a);
	case XB_GUP_UNPIN:
		return xb_gup_unpin_ioctl(a);
	case XB_PLACE:
		return xb_place(a);
	default:
		return -ENOTTY;
	}
}

static long xb_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	u64 a[13] = {};
	size_t size = _IOC_SIZE(cmd);
	long ret;

	if (_IOC_TYPE(cmd) != 'X' || size > sizeof(a))
		return -ENOTTY;
	if ((_IOC_DIR(cmd) & _IOC_WRITE) && copy_from_user(a, uarg, size))
		return -EFAULT;
	mutex_lock(&xb_lock);
	ret = xb_dispatch(cmd, a);
	mutex_unlock(&xb_lock);
	if (ret >= 0 && (_IOC_DIR(cmd) & _IOC_READ) && copy_to_user(uarg, a, size))
		return -EFAULT;
	return ret;
}

static const struct file_operations xb_fops = {
	.owner = THIS_MODULE,
	.open = xb_open,
	.release = xb_close,
	.unlocked_ioctl = xb_ioctl,
};

static struct miscdevice xb_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "xendma_bench",
	.fops = &xb_fops,
};

module_misc_device(xb_misc);

MODULE_DESCRIPTION("xendma benchmark driver: memcpy floor, pool pressure, ODP against GUP");
MODULE_LICENSE("GPL");
