// SPDX-License-Identifier: GPL-2.0
/*
 * The DMA API: what is static inline or a macro in 6.12.
 */
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/dmapool.h>
#include <linux/scatterlist.h>

#include "helpers.h"

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

u64 xendma_sg_phys(struct scatterlist *sg)
{
	return sg_phys(sg);
}

unsigned int xendma_sg_length(struct scatterlist *sg)
{
	return sg->length;
}

u64 xendma_sg_dma_address(struct scatterlist *sg)
{
	return sg_dma_address(sg);
}

unsigned int xendma_sg_dma_len(struct scatterlist *sg)
{
	return sg_dma_len(sg);
}

/* dma_pool_create is a function in 6.12 and a wrapper of dma_pool_create_node in 7.x. */
struct dma_pool *xendma_dma_pool_create(const char *name, struct device *dev, size_t size,
					size_t align, size_t boundary)
{
	return dma_pool_create(name, dev, size, align, boundary);
}
