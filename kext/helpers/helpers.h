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
struct dma_pool *xendma_dma_pool_create(const char *name, struct device *dev, size_t size,
					size_t align, size_t boundary);

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
struct scatterlist;
u64 xendma_sg_phys(struct scatterlist *sg);
unsigned int xendma_sg_length(struct scatterlist *sg);
u64 xendma_sg_dma_address(struct scatterlist *sg);
unsigned int xendma_sg_dma_len(struct scatterlist *sg);

/* Page allocation by zone: 0 any, 1 below 4 GiB (DMA32), 2 the DMA zone. */
struct page *xendma_alloc_pages_gfp(unsigned int order, int zone, unsigned int flags, bool zero);
void xendma_free_pages(struct page *page, unsigned int order);
void *xendma_page_address(struct page *page);
u64 xendma_page_to_phys(struct page *page);
/* The start of the memmap (vmemmap) with CONFIG_SPARSEMEM_VMEMMAP, else 0. */
unsigned long xendma_vmemmap_start(void);
struct page *xendma_nth_page(struct page *page, unsigned long n);
/* References on pages of others (kext::page::PageRef). */
void xendma_get_page(struct page *page);
void xendma_put_page(struct page *page);
void xendma_set_page_dirty(struct page *page);
/* Copies len bytes at offset of the page (kmap_local_page), offset + len <= PAGE_SIZE. */
void xendma_copy_from_page(struct page *page, size_t offset, void *dst, size_t len);

/* PCI: static inlines of 6.12 (struct pci_driver is built in kext/pci.rs), and the device lock. */
void *xendma_pci_get_drvdata(struct pci_dev *pdev);
void xendma_pci_set_drvdata(struct pci_dev *pdev, void *data);
u64 xendma_pci_resource_len(struct pci_dev *pdev, int bar);
void xendma_device_lock(struct device *dev);
void xendma_device_unlock(struct device *dev);
u32 xendma_mmio_read32(void __iomem *base, unsigned long offset);
void xendma_mmio_write32(void __iomem *base, unsigned long offset, u32 value);
void xendma_mmio_write64(void __iomem *base, unsigned long offset, u64 value);

/* Test-build knobs: which environment the lane runner says we are in ("", "none", "pv"). */
const char *xendma_expected_xen(void);
/* Test builds: records, at the start of the module's init, how many fault points the loading
 * task still had to go under /proc/<pid>/fail-nth (parameter init_fail_nth; 0 without fault
 * injection), so that fault_inject can start its sweeps at the module's own code. */
void xendma_kunit_note_init(void);
/* Test builds only: marks the running KUnit case skipped, with a reason. */
struct kunit;
void xendma_kunit_skip(struct kunit *test, const char *reason);
/* Test builds only: runs fn(info) on every online CPU (on_each_cpu, waiting); returns how many. */
unsigned int xendma_kunit_on_each_cpu(void (*fn)(void *info), void *info);

/* Per-CPU counters (percpu.c, xen_swiotlb_rs.ko): the per-CPU pointer travels as a void *. */
void *xendma_percpu_alloc(size_t bytes);
void xendma_percpu_free(void *pcp);
void xendma_percpu_add(void *pcp, u64 v);
u64 xendma_percpu_sum(const void *pcp);
bool xendma_percpu_read_cpu(const void *pcp, unsigned int cpu, u64 *v);
/* Writes each possible CPU's number into its own copy of the u64 at pcp. */
void xendma_percpu_set_cpu_ids(void *pcp);

/* Trace events (trace_swiotlb.c: xen_swiotlb_rs.ko; trace_odp.c: odp_umem.ko). */
extern const atomic_t *const xendma_trace_bounced_key;
void xendma_trace_bounced(struct device *dev, u64 phys, u64 bounce, size_t size, int dir,
			  unsigned int reason);
void xendma_trace_map_failed(struct device *dev, size_t size, unsigned int reason, u64 used_slots,
			     u64 slots);
void xendma_trace_pool_grow(u64 bytes, bool worker, unsigned int min_bits, unsigned int max_bits,
			    u64 duration_us, u64 pool_bytes);
void xendma_trace_attach(const char *dev, int ret);
void xendma_trace_detach(const char *dev, int ret);
void xendma_trace_odp_fault(u64 start, u64 end, u64 pages, u32 retries, u64 mapped, int ret);
void xendma_trace_odp_invalidate(u64 start, u64 end, int event, u64 unmapped);
void xendma_trace_odp_map_page(u64 addr, u64 dma, bool writable);

#endif
#include "mmu_notifier.h"
