// SPDX-License-Identifier: GPL-2.0
/*
 * Pages: allocation by zone, addresses, frame numbers, free memory, the end of RAM.
 */
#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/vmstat.h>
#include <linux/memblock.h>

#include "helpers.h"

unsigned long xendma_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
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

unsigned long xendma_vmemmap_start(void)
{
#ifdef CONFIG_SPARSEMEM_VMEMMAP
	return (unsigned long)vmemmap;
#else
	return 0;
#endif
}

struct page *xendma_nth_page(struct page *page, unsigned long n)
{
#ifdef nth_page
	return nth_page(page, n);
#else
	/* 7.x removed nth_page(): the memmap of a contiguous range is contiguous. */
	return page + n;
#endif
}

void *xendma_phys_to_virt(u64 phys)
{
	return phys_to_virt(phys);
}

struct page *xendma_virt_to_page(const void *addr)
{
	return virt_to_page(addr);
}

u64 xendma_ram_end(void)
{
	return virt_to_phys(high_memory - 1);
}

unsigned long xendma_nr_free_pages(void)
{
	return global_zone_page_state(NR_FREE_PAGES);
}

/* References on pages of others (PageRef). */
void xendma_get_page(struct page *page)
{
	get_page(page);
}

void xendma_put_page(struct page *page)
{
	put_page(page);
}

void xendma_set_page_dirty(struct page *page)
{
	/*
	 * As upstream's ib_umem_odp_unmap_dma_pages(): invalidations run both with and without
	 * the page lock held, so set_page_dirty_lock() could deadlock here.
	 */
	set_page_dirty(compound_head(page));
}

void xendma_copy_from_page(struct page *page, size_t offset, void *dst, size_t len)
{
	void *va = kmap_local_page(page);

	memcpy(dst, va + offset, len);
	kunmap_local(va);
}
