/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for the Rust modules: wrappers of static inline kernel functions and
 * macros that bindgen cannot see, plus build-time facts from the C compiler.
 */
#ifndef XENDMA_HELPERS_H
#define XENDMA_HELPERS_H

#include <linux/types.h>

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
const struct dma_map_ops *xendma_get_dma_ops(struct device *dev);
void xendma_set_dma_ops(struct device *dev, const struct dma_map_ops *ops);
int xendma_dma_mapping_error(struct device *dev, u64 dma_addr);
u64 xendma_dma_get_mask(struct device *dev);

/* Test-build knobs: which environment the lane runner says we are in ("", "none", "pv"). */
const char *xendma_expected_xen(void);

#endif
