// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers shared by the project's Rust modules. Each module compiles this file
 * through its own one-line wrapper (ffi/<module>_helpers.c), so that no object
 * file is linked into two modules.
 */
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/hmm.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/stddef.h>
#include <xen/interface/xen.h>
#include <xen/interface/memory.h>
#include <xen/interface/version.h>
#include <xen/xen.h>
#ifdef CONFIG_XEN
#include <asm/xen/hypercall.h>
#include <asm/xen/page.h>
#endif

#include "helpers.h"

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

#ifdef XENDMA_KUNIT
static char *expect_xen = "";
module_param(expect_xen, charp, 0444);
MODULE_PARM_DESC(expect_xen, "test builds: the Xen domain kind the lane runs in (none, pv)");

const char *xendma_expected_xen(void)
{
	return expect_xen;
}
#else
const char *xendma_expected_xen(void)
{
	return "";
}
#endif
