// SPDX-License-Identifier: GPL-2.0
/*
 * The dma_map_ops glue: a device's ops and DMA parameters, driver rebinding, and the
 * table's operations that are written in C (scatter-gather loops, mmap, get_sgtable).
 */
#include <linux/device.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/iommu-dma.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>

#include "helpers.h"

const struct dma_map_ops *xendma_dev_dma_ops(struct device *dev)
{
	return dev->dma_ops;
}

void xendma_dev_set_dma_ops(struct device *dev, const struct dma_map_ops *ops)
{
	set_dma_ops(dev, ops);
	/*
	 * Whether to skip syncs was decided for the previous ops when the
	 * device was probed; a device without a driver is not re-probed, so
	 * make the DMA API call the sync operations again. Always correct, at
	 * worst slower.
	 */
	dma_reset_need_sync(dev);
}

bool xendma_dev_uses_iommu_dma(struct device *dev)
{
	/* The DMA API asks use_dma_iommu() before it looks at dev->dma_ops (6.10 and later). */
	return use_dma_iommu(dev);
}

struct device *xendma_pci_find(const char *name)
{
	return bus_find_device_by_name(&pci_bus_type, NULL, name);
}

int xendma_device_release_driver(struct device *dev)
{
	device_release_driver(dev);
	return 0;
}

int xendma_device_attach(struct device *dev)
{
	return device_attach(dev);
}

int xendma_ops_map_sg(struct device *dev, struct scatterlist *sgl, int nents, enum dma_data_direction dir,
		      unsigned long attrs)
{
	const struct dma_map_ops *ops = get_dma_ops(dev);
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i) {
#ifdef XENDMA_MAP_PHYS
		sg->dma_address = ops->map_phys(dev, sg_phys(sg), sg->length, dir, attrs);
#else
		sg->dma_address = ops->map_page(dev, sg_page(sg), sg->offset, sg->length, dir,
						attrs);
#endif
		if (sg->dma_address == DMA_MAPPING_ERROR)
			goto out_unmap;
		sg_dma_len(sg) = sg->length;
	}
	return nents;

out_unmap:
	/* Undo what was mapped; the copy-back is pointless, nothing reached the device. */
	ops->unmap_sg(dev, sgl, i, dir, attrs | DMA_ATTR_SKIP_CPU_SYNC);
	sg_dma_len(sgl) = 0;
	return -EIO;
}

void xendma_ops_unmap_sg(struct device *dev, struct scatterlist *sgl, int nents, enum dma_data_direction dir,
			 unsigned long attrs)
{
	const struct dma_map_ops *ops = get_dma_ops(dev);
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
#ifdef XENDMA_MAP_PHYS
		ops->unmap_phys(dev, sg->dma_address, sg_dma_len(sg), dir, attrs);
#else
		ops->unmap_page(dev, sg->dma_address, sg_dma_len(sg), dir, attrs);
#endif
}

void xendma_ops_sync_sg_for_cpu(struct device *dev, struct scatterlist *sgl, int nents, enum dma_data_direction dir)
{
	const struct dma_map_ops *ops = get_dma_ops(dev);
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
		ops->sync_single_for_cpu(dev, sg->dma_address, sg->length, dir);
}

void xendma_ops_sync_sg_for_device(struct device *dev, struct scatterlist *sgl, int nents,
				   enum dma_data_direction dir)
{
	const struct dma_map_ops *ops = get_dma_ops(dev);
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
		ops->sync_single_for_device(dev, sg->dma_address, sg->length, dir);
}

/* Coherent buffers of the ops are ordinary pages of the linear map (dma_common_mmap). */
int xendma_ops_mmap(struct device *dev, struct vm_area_struct *vma, void *cpu_addr,
		    u64 dma_addr, size_t size, unsigned long attrs)
{
	unsigned long user_count = vma_pages(vma);
	unsigned long count = PAGE_ALIGN(size) >> PAGE_SHIFT;
	unsigned long off = vma->vm_pgoff;

	if (off >= count || user_count > count - off)
		return -ENXIO;
	return remap_pfn_range(vma, vma->vm_start, page_to_pfn(virt_to_page(cpu_addr)) + off,
			       user_count << PAGE_SHIFT, vma->vm_page_prot);
}

int xendma_ops_get_sgtable(struct device *dev, struct sg_table *sgt, void *cpu_addr,
			   u64 dma_addr, size_t size, unsigned long attrs)
{
	int ret = sg_alloc_table(sgt, 1, GFP_KERNEL);

	if (!ret)
		sg_set_page(sgt->sgl, virt_to_page(cpu_addr), PAGE_ALIGN(size), 0);
	return ret;
}
