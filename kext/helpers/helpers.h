/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for the Rust modules: wrappers of static inline kernel functions and
 * macros that bindgen cannot see, plus build-time facts from the C compiler.
 */
#ifndef XENDMA_HELPERS_H
#define XENDMA_HELPERS_H

#include <linux/types.h>

#include "dma_ops.h"
#include "xen_exchange.h"

struct device;
struct dma_map_ops;

/* One fact about a C structure layout, measured by the C compiler. */
struct xendma_layout {
	const char *name;
	size_t value;
};

/* Layout facts, terminated by an entry whose name is NULL. */
extern const struct xendma_layout xendma_layouts[];

bool xendma_xen_domain(void);
bool xendma_xen_pv_domain(void);
bool xendma_xen_initial_domain(void);
int xendma_xen_version(void);
unsigned long xendma_pfn_to_mfn(unsigned long pfn);
unsigned long xendma_mfn_to_pfn(unsigned long mfn);
struct page;
struct pci_dev;
unsigned long xendma_page_to_pfn(struct page *page);

struct device *xendma_pci_dev_device(struct pci_dev *pdev);
int xendma_dma_mapping_error(struct device *dev, u64 dma_addr);
u64 xendma_dma_get_mask(struct device *dev);

/* DMA API pieces that are static inline or macros in 6.12. */
bool xendma_dma_supported(struct device *dev, u64 mask);
u64 xendma_dma_get_coherent_mask(struct device *dev);
unsigned int xendma_dma_get_max_seg_size(struct device *dev);
int xendma_dma_set_max_seg_size(struct device *dev, unsigned int size);
u64 xendma_dma_map_single_attrs(struct device *dev, void *ptr, size_t size, int dir,
				unsigned long attrs);
void xendma_dma_sync_single_for_cpu(struct device *dev, u64 addr, size_t size, int dir);
void xendma_dma_sync_single_for_device(struct device *dev, u64 addr, size_t size, int dir);
struct sg_table;
struct scatterlist;
void xendma_dma_unmap_sgtable(struct device *dev, struct sg_table *sgt, int dir,
			      unsigned long attrs);
void xendma_dma_sync_sgtable_for_cpu(struct device *dev, struct sg_table *sgt, int dir);
void xendma_dma_sync_sgtable_for_device(struct device *dev, struct sg_table *sgt, int dir);
u64 xendma_sg_dma_address(struct scatterlist *sg);
unsigned int xendma_sg_dma_len(struct scatterlist *sg);

/* Page allocation by zone: 0 any, 1 below 4 GiB (DMA32), 2 the DMA zone. */
struct page *xendma_alloc_pages_gfp(unsigned int order, int zone, unsigned int flags, bool zero);
void xendma_free_pages(struct page *page, unsigned int order);
void *xendma_page_address(struct page *page);
u64 xendma_page_to_phys(struct page *page);
struct page *xendma_nth_page(struct page *page, unsigned long n);
/* References on pages of others (kext::page::PageRef). */
void xendma_get_page(struct page *page);
void xendma_put_page(struct page *page);
void xendma_set_page_dirty(struct page *page);
/* Copies len bytes at offset of the page (kmap_local_page), offset + len <= PAGE_SIZE. */
void xendma_copy_from_page(struct page *page, size_t offset, void *dst, size_t len);

/* PCI driver glue: a driver with one ID whose probe and remove call back into Rust. The glue
 * enables the device and bus mastering before probe, and undoes both after remove. */
struct xendma_pci_driver;
typedef int (*xendma_pci_probe_t)(struct pci_dev *pdev);
typedef void (*xendma_pci_remove_t)(struct pci_dev *pdev);
struct xendma_pci_driver *xendma_pci_driver_register(const char *name, u16 vendor, u16 device,
						     xendma_pci_probe_t probe,
						     xendma_pci_remove_t remove,
						     struct module *owner);
void xendma_pci_driver_unregister(struct xendma_pci_driver *drv);
bool xendma_pci_driven_by(struct pci_dev *pdev, const struct xendma_pci_driver *drv);
void *xendma_pci_get_drvdata(struct pci_dev *pdev);
void xendma_pci_set_drvdata(struct pci_dev *pdev, void *data);
u64 xendma_pci_resource_len(struct pci_dev *pdev, int bar);
void xendma_device_lock(struct device *dev);
void xendma_device_unlock(struct device *dev);
u32 xendma_mmio_read32(void __iomem *base, unsigned long offset);
void xendma_mmio_write32(void __iomem *base, unsigned long offset, u32 value);
void xendma_mmio_write64(void __iomem *base, unsigned long offset, u64 value);

/* Misc device glue: a dynamic-minor misc device whose file operations call back into Rust with
 * the per-file pointer that open returned. The C object is reference counted by its open files,
 * so that their file operations stay valid after deregistration. */
struct xendma_misc;
struct vm_area_struct;
typedef void *(*xendma_misc_open_t)(void *ctx, int *err);
typedef void (*xendma_misc_release_t)(void *file);
typedef int (*xendma_misc_mmap_t)(void *file, struct vm_area_struct *vma);
typedef long (*xendma_misc_ioctl_t)(void *file, unsigned int cmd, unsigned long arg);
struct xendma_misc *xendma_misc_register(const char *name, void *ctx, xendma_misc_open_t open,
					 xendma_misc_release_t release, xendma_misc_mmap_t mmap,
					 xendma_misc_ioctl_t ioctl, struct module *owner);
void xendma_misc_deregister(struct xendma_misc *m);

/* Test-build knobs: which environment the lane runner says we are in ("", "none", "pv"). */
const char *xendma_expected_xen(void);
/* Test builds only: marks the running KUnit case skipped, with a reason. */
struct kunit;
void xendma_kunit_skip(struct kunit *test, const char *reason);

#endif
#include "mmu_notifier.h"
