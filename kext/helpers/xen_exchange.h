/* SPDX-License-Identifier: GPL-2.0 */
/*
 * XENMEM_exchange from a module: trade the machine frames behind pages we own for one
 * machine-contiguous extent below an address width, and back. The kernel's own
 * xen_create_contiguous_region() is not exported to modules.
 */
#ifndef XENDMA_XEN_EXCHANGE_H
#define XENDMA_XEN_EXCHANGE_H

#include <linux/types.h>

struct page;

/*
 * Replaces the frames behind the 2^order linear-map pages from @page with one machine-contiguous
 * extent below 2^@address_bits; the contents are zeroed. 0 and the extent's first machine frame
 * in *@mfn (@gfp is the context for a small temporary array); -ENOMEM (or Xen's error) if Xen had no such extent, the old frames being back in
 * place; -EOPNOTSUPP outside a PV domain; -EINVAL for bad arguments; -EIO if the page tables
 * could not be restored, in which case the pages must never be touched or freed again.
 */
int xendma_xen_exchange_contig(struct page *page, unsigned int order, unsigned int address_bits,
			       u64 *mfn, gfp_t gfp);

/*
 * Gives the machine-contiguous extent behind the 2^order pages from @page back to Xen for
 * arbitrary frames; the contents are zeroed. 0, or an error with the contiguous frames still in
 * place (the pages stay usable); -EIO as above.
 */
int xendma_xen_exchange_back(struct page *page, unsigned int order, gfp_t gfp);

/* Pages the domain holds as Xen counts them (XENMEM_current_reservation), or -errno. */
long xendma_xen_reservation(void);

/* The highest machine frame of the host's RAM (XENMEM_maximum_ram_page), or -errno. */
long xendma_xen_max_ram_page(void);

/* Free pages of the page allocator (NR_FREE_PAGES). */
unsigned long xendma_nr_free_pages(void);

/* The PG_xen_remapped page flag, as swiotlb-xen marks exchanged coherent buffers. */
void xendma_page_set_xen_remapped(struct page *page);
bool xendma_page_test_clear_xen_remapped(struct page *page);

#endif
