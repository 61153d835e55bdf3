// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers shared by the project's Rust modules. Each module compiles this file
 * through its own one-line wrapper (ffi/<module>_helpers.c), so that no object
 * file is linked into two modules.
 */
#include <linux/dma-map-ops.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/dma-mapping.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/hmm.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/stddef.h>
#include <xen/interface/xen.h>
#include <xen/interface/memory.h>
#include <xen/interface/version.h>
#include <xen/xen.h>
#ifdef CONFIG_XEN
#include <asm/xen/hypercall.h>
#include <asm/xen/page.h>
#endif

#include <kunit/test.h>

#include "helpers.h"
#include "dma_ops_helpers.c"

#define XENDMA_SIZE(type) { "sizeof(struct " #type ")", sizeof(struct type) }
#define XENDMA_OFF(type, field) { "offsetof(struct " #type ", " #field ")", offsetof(struct type, field) }

const struct xendma_layout xendma_layouts[] = {
	XENDMA_SIZE(dma_map_ops),
	XENDMA_OFF(dma_map_ops, alloc),
	XENDMA_OFF(dma_map_ops, free),
	XENDMA_OFF(dma_map_ops, mmap),
	XENDMA_OFF(dma_map_ops, map_page),
	XENDMA_OFF(dma_map_ops, unmap_page),
	XENDMA_OFF(dma_map_ops, map_sg),
	XENDMA_OFF(dma_map_ops, unmap_sg),
	XENDMA_OFF(dma_map_ops, sync_single_for_cpu),
	XENDMA_OFF(dma_map_ops, sync_single_for_device),
	XENDMA_OFF(dma_map_ops, sync_sg_for_cpu),
	XENDMA_OFF(dma_map_ops, sync_sg_for_device),
	XENDMA_OFF(dma_map_ops, dma_supported),
	XENDMA_OFF(dma_map_ops, get_required_mask),
	XENDMA_OFF(dma_map_ops, max_mapping_size),
	XENDMA_SIZE(hmm_range),
	XENDMA_OFF(hmm_range, notifier),
	XENDMA_OFF(hmm_range, notifier_seq),
	XENDMA_OFF(hmm_range, start),
	XENDMA_OFF(hmm_range, end),
	XENDMA_OFF(hmm_range, hmm_pfns),
	XENDMA_OFF(hmm_range, default_flags),
	XENDMA_OFF(hmm_range, pfn_flags_mask),
	XENDMA_OFF(hmm_range, dev_private_owner),
	XENDMA_SIZE(miscdevice),
	XENDMA_OFF(miscdevice, minor),
	XENDMA_OFF(miscdevice, name),
	XENDMA_OFF(miscdevice, fops),
	XENDMA_OFF(miscdevice, this_device),
	XENDMA_SIZE(xen_memory_reservation),
	XENDMA_OFF(xen_memory_reservation, extent_start),
	XENDMA_OFF(xen_memory_reservation, nr_extents),
	XENDMA_OFF(xen_memory_reservation, extent_order),
	XENDMA_OFF(xen_memory_reservation, address_bits),
	XENDMA_OFF(xen_memory_reservation, domid),
	XENDMA_SIZE(xen_memory_exchange),
	XENDMA_OFF(xen_memory_exchange, in),
	XENDMA_OFF(xen_memory_exchange, out),
	XENDMA_OFF(xen_memory_exchange, nr_exchanged),
	{ NULL, 0 },
};

bool xendma_xen_domain(void)
{
	return xen_domain();
}

bool xendma_xen_pv_domain(void)
{
	return xen_pv_domain();
}

bool xendma_xen_initial_domain(void)
{
	return xen_initial_domain();
}

/* XENVER_version: major << 16 | minor, or -ENODEV outside Xen. */
int xendma_xen_version(void)
{
#ifdef CONFIG_XEN
	if (xen_domain())
		return HYPERVISOR_xen_version(XENVER_version, NULL);
#endif
	return -ENODEV;
}

unsigned long xendma_pfn_to_mfn(unsigned long pfn)
{
#ifdef CONFIG_XEN_PV
	if (xen_pv_domain())
		return pfn_to_mfn(pfn);
#endif
	return pfn;
}

unsigned long xendma_mfn_to_pfn(unsigned long mfn)
{
#ifdef CONFIG_XEN_PV
	if (xen_pv_domain())
		return mfn_to_pfn(mfn);
#endif
	return mfn;
}

unsigned long xendma_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

struct device *xendma_pci_dev_device(struct pci_dev *pdev)
{
	return &pdev->dev;
}

const struct dma_map_ops *xendma_get_dma_ops(struct device *dev)
{
	return get_dma_ops(dev);
}

void xendma_set_dma_ops(struct device *dev, const struct dma_map_ops *ops)
{
	set_dma_ops(dev, ops);
}

int xendma_dma_mapping_error(struct device *dev, u64 dma_addr)
{
	return dma_mapping_error(dev, dma_addr);
}

u64 xendma_dma_get_mask(struct device *dev)
{
	return dma_get_mask(dev);
}

/*
 * dma_supported() is static in kernel/dma/mapping.c. This follows it: the device's ops decide if
 * it has ops; otherwise dma-direct's rule applies (every mask of 32 bits or more, and smaller
 * masks that cover the DMA zone, or all memory when there is no DMA zone).
 */
bool xendma_dma_supported(struct device *dev, u64 mask)
{
	const struct dma_map_ops *ops = get_dma_ops(dev);
	u64 limit;

	if (ops)
		return !ops->dma_supported || ops->dma_supported(dev, mask);
	if (mask >= DMA_BIT_MASK(32))
		return true;
	limit = dma_get_required_mask(dev);
#ifdef CONFIG_ZONE_DMA
	limit = min_t(u64, limit, DMA_BIT_MASK(24));
#endif
	return mask >= limit;
}

u64 xendma_dma_get_coherent_mask(struct device *dev)
{
	return dev->coherent_dma_mask;
}

unsigned int xendma_dma_get_max_seg_size(struct device *dev)
{
	return dma_get_max_seg_size(dev);
}

/* dma_set_max_seg_size() WARNs when the device has no DMA parameters; this reports -EIO. */
int xendma_dma_set_max_seg_size(struct device *dev, unsigned int size)
{
	if (!dev->dma_parms)
		return -EIO;
	dma_set_max_seg_size(dev, size);
	return 0;
}

u64 xendma_dma_map_single_attrs(struct device *dev, void *ptr, size_t size, int dir,
				unsigned long attrs)
{
	return dma_map_single_attrs(dev, ptr, size, dir, attrs);
}

void xendma_dma_sync_single_for_cpu(struct device *dev, u64 addr, size_t size, int dir)
{
	dma_sync_single_for_cpu(dev, addr, size, dir);
}

void xendma_dma_sync_single_for_device(struct device *dev, u64 addr, size_t size, int dir)
{
	dma_sync_single_for_device(dev, addr, size, dir);
}

void xendma_dma_unmap_sgtable(struct device *dev, struct sg_table *sgt, int dir,
			      unsigned long attrs)
{
	dma_unmap_sgtable(dev, sgt, dir, attrs);
}

void xendma_dma_sync_sgtable_for_cpu(struct device *dev, struct sg_table *sgt, int dir)
{
	dma_sync_sgtable_for_cpu(dev, sgt, dir);
}

void xendma_dma_sync_sgtable_for_device(struct device *dev, struct sg_table *sgt, int dir)
{
	dma_sync_sgtable_for_device(dev, sgt, dir);
}

u64 xendma_sg_dma_address(struct scatterlist *sg)
{
	return sg_dma_address(sg);
}

unsigned int xendma_sg_dma_len(struct scatterlist *sg)
{
	return sg_dma_len(sg);
}

struct page *xendma_alloc_pages_gfp(unsigned int order, int zone, unsigned int flags, bool zero)
{
	/* The caller's reclaim and context bits; the zone is ours to choose. */
	gfp_t gfp = ((__force gfp_t)flags & ~(__GFP_DMA | __GFP_DMA32 | __GFP_HIGHMEM | __GFP_COMP |
					      __GFP_ZERO)) | __GFP_NOWARN;

	if (zone == 1)
		gfp |= GFP_DMA32;
	else if (zone == 2)
		gfp |= GFP_DMA;
	if (zero)
		gfp |= __GFP_ZERO;
	return alloc_pages(gfp, order);
}

struct page *xendma_alloc_pages(unsigned int order, int zone, bool zero)
{
	return xendma_alloc_pages_gfp(order, zone, (__force unsigned int)GFP_KERNEL, zero);
}

void xendma_free_pages(struct page *page, unsigned int order)
{
	__free_pages(page, order);
}

void *xendma_page_address(struct page *page)
{
	return page_address(page);
}

u64 xendma_page_to_phys(struct page *page)
{
	return page_to_phys(page);
}

struct page *xendma_nth_page(struct page *page, unsigned long n)
{
	return nth_page(page, n);
}

struct xendma_pci_driver {
	struct pci_driver drv;
	struct pci_device_id ids[2];
	xendma_pci_probe_t probe;
	xendma_pci_remove_t remove;
};

static int xendma_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct xendma_pci_driver *d = container_of(pdev->driver, struct xendma_pci_driver, drv);
	int rc = pci_enable_device(pdev);

	if (rc)
		return rc;
	pci_set_master(pdev);
	rc = d->probe(pdev);
	if (rc) {
		pci_clear_master(pdev);
		pci_disable_device(pdev);
	}
	return rc;
}

static void xendma_pci_remove(struct pci_dev *pdev)
{
	struct xendma_pci_driver *d = container_of(pdev->driver, struct xendma_pci_driver, drv);

	d->remove(pdev);
	pci_clear_master(pdev);
	pci_disable_device(pdev);
}

struct xendma_pci_driver *xendma_pci_driver_register(const char *name, u16 vendor, u16 device,
						     xendma_pci_probe_t probe,
						     xendma_pci_remove_t remove,
						     struct module *owner)
{
	struct xendma_pci_driver *d = kzalloc(sizeof(*d), GFP_KERNEL);
	int rc;

	if (!d)
		return ERR_PTR(-ENOMEM);
	d->ids[0].vendor = vendor;
	d->ids[0].device = device;
	d->ids[0].subvendor = PCI_ANY_ID;
	d->ids[0].subdevice = PCI_ANY_ID;
	d->probe = probe;
	d->remove = remove;
	d->drv.name = name;
	d->drv.id_table = d->ids;
	d->drv.probe = xendma_pci_probe;
	d->drv.remove = xendma_pci_remove;
	rc = __pci_register_driver(&d->drv, owner, name);
	if (rc) {
		kfree(d);
		return ERR_PTR(rc);
	}
	return d;
}

void xendma_pci_driver_unregister(struct xendma_pci_driver *d)
{
	pci_unregister_driver(&d->drv);
	kfree(d);
}

bool xendma_pci_driven_by(struct pci_dev *pdev, const struct xendma_pci_driver *d)
{
	return pdev->driver == &d->drv;
}

void *xendma_pci_get_drvdata(struct pci_dev *pdev)
{
	return pci_get_drvdata(pdev);
}

void xendma_pci_set_drvdata(struct pci_dev *pdev, void *data)
{
	pci_set_drvdata(pdev, data);
}

u64 xendma_pci_resource_len(struct pci_dev *pdev, int bar)
{
	if (bar < 0 || bar >= PCI_STD_NUM_BARS)
		return 0;
	return pci_resource_len(pdev, bar);
}

void xendma_device_lock(struct device *dev)
{
	device_lock(dev);
}

void xendma_device_unlock(struct device *dev)
{
	device_unlock(dev);
}

u32 xendma_mmio_read32(void __iomem *base, unsigned long offset)
{
	return readl(base + offset);
}

void xendma_mmio_write32(void __iomem *base, unsigned long offset, u32 value)
{
	writel(value, base + offset);
}

void xendma_mmio_write64(void __iomem *base, unsigned long offset, u64 value)
{
	writeq(value, base + offset);
}

struct xendma_misc {
	struct miscdevice misc;
	struct file_operations fops;
	struct kref ref;
	void *ctx;
	xendma_misc_open_t open;
	xendma_misc_release_t release;
	xendma_misc_mmap_t mmap;
	xendma_misc_ioctl_t ioctl;
};

/* What each open file holds: its Rust data and a reference on the C object. */
struct xendma_misc_file {
	struct xendma_misc *m;
	void *data;
};

static void xendma_misc_free(struct kref *ref)
{
	kfree(container_of(ref, struct xendma_misc, ref));
}

static int xendma_misc_fop_open(struct inode *inode, struct file *file)
{
	/* misc_open() stored the miscdevice here, under misc_mtx, which deregistration also takes. */
	struct xendma_misc *m = container_of(file->private_data, struct xendma_misc, misc);
	struct xendma_misc_file *f = kzalloc(sizeof(*f), GFP_KERNEL);
	int err = -ENOMEM;

	if (!f)
		return -ENOMEM;
	f->data = m->open(m->ctx, &err);
	if (!f->data) {
		kfree(f);
		return err;
	}
	kref_get(&m->ref);
	f->m = m;
	file->private_data = f;
	return 0;
}

static int xendma_misc_fop_release(struct inode *inode, struct file *file)
{
	struct xendma_misc_file *f = file->private_data;
	struct xendma_misc *m = f->m;

	m->release(f->data);
	kfree(f);
	kref_put(&m->ref, xendma_misc_free);
	return 0;
}

static int xendma_misc_fop_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct xendma_misc_file *f = file->private_data;

	return f->m->mmap(f->data, vma);
}

static long xendma_misc_fop_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct xendma_misc_file *f = file->private_data;

	return f->m->ioctl(f->data, cmd, arg);
}

struct xendma_misc *xendma_misc_register(const char *name, void *ctx, xendma_misc_open_t open,
					 xendma_misc_release_t release, xendma_misc_mmap_t mmap,
					 xendma_misc_ioctl_t ioctl, struct module *owner)
{
	struct xendma_misc *m = kzalloc(sizeof(*m), GFP_KERNEL);
	int rc;

	if (!m)
		return ERR_PTR(-ENOMEM);
	kref_init(&m->ref);
	m->ctx = ctx;
	m->open = open;
	m->release = release;
	m->mmap = mmap;
	m->ioctl = ioctl;
	m->fops.owner = owner;
	m->fops.open = xendma_misc_fop_open;
	m->fops.release = xendma_misc_fop_release;
	m->fops.mmap = xendma_misc_fop_mmap;
	m->fops.unlocked_ioctl = xendma_misc_fop_ioctl;
	m->fops.compat_ioctl = compat_ptr_ioctl;
	m->misc.minor = MISC_DYNAMIC_MINOR;
	m->misc.name = name;
	m->misc.fops = &m->fops;
	m->misc.mode = 0600;
	rc = misc_register(&m->misc);
	if (rc) {
		kfree(m);
		return ERR_PTR(rc);
	}
	return m;
}

void xendma_misc_deregister(struct xendma_misc *m)
{
	misc_deregister(&m->misc);
	kref_put(&m->ref, xendma_misc_free);
}

#ifdef XENDMA_KUNIT
static char *expect_xen = "";
module_param(expect_xen, charp, 0444);
MODULE_PARM_DESC(expect_xen, "test builds: the Xen domain kind the lane runs in (none, pv)");

const char *xendma_expected_xen(void)
{
	return expect_xen;
}

void xendma_kunit_skip(struct kunit *test, const char *reason)
{
	kunit_mark_skipped(test, "%s", reason);
}
#else
const char *xendma_expected_xen(void)
{
	return "";
}
#endif
#include "odp_helpers.c"
