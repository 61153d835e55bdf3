// SPDX-License-Identifier: GPL-2.0
/*
 * C side of the dma_map_ops glue; see dma_ops_helpers.h. Compiled into each
 * module through ffi/helpers.c.
 */
#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/ratelimit.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#include "dma_ops_helpers.h"

const struct dma_map_ops *xendma_dev_dma_ops(struct device *dev)
{
	return dev->dma_ops;
}

void xendma_dev_set_dma_ops(struct device *dev, const struct dma_map_ops *ops)
{
	set_dma_ops(dev, ops);
#ifdef CONFIG_DMA_NEED_SYNC
	/*
	 * dma_skip_sync was computed for the previous ops when the device was
	 * probed; a device without a driver is not re-probed, so make the DMA
	 * API call the sync operations again. Always correct, at worst slower.
	 */
	dev->dma_skip_sync = false;
#endif
}

bool xendma_dev_has_driver(struct device *dev)
{
	return READ_ONCE(dev->driver) != NULL;
}

void xendma_dev_dma_params(struct device *dev, struct xendma_dma_params *p)
{
	p->dma_mask = dev->dma_mask ? *dev->dma_mask : 0;
	p->bus_dma_limit = dev->bus_dma_limit;
	p->min_align_mask = dma_get_min_align_mask(dev);
	p->seg_boundary = dma_get_seg_boundary(dev);
}

const char *xendma_dev_name(struct device *dev)
{
	return dev_name(dev);
}

const char *xendma_dev_driver_name(struct device *dev)
{
	struct device_driver *drv = READ_ONCE(dev->driver);

	return drv ? drv->name : NULL;
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
		sg->dma_address = ops->map_page(dev, sg_page(sg), sg->offset, sg->length, dir,
						attrs);
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
		ops->unmap_page(dev, sg->dma_address, sg_dma_len(sg), dir, attrs);
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

unsigned long xendma_spin_lock_irqsave(struct spinlock *lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	return flags;
}

void xendma_spin_unlock_irqrestore(struct spinlock *lock, unsigned long flags)
{
	spin_unlock_irqrestore(lock, flags);
}

unsigned int xendma_this_cpu(void)
{
	return raw_smp_processor_id();
}

unsigned int xendma_possible_cpus(void)
{
	return num_possible_cpus();
}

bool xendma_warn_ratelimit(void)
{
	static DEFINE_RATELIMIT_STATE(rs, DEFAULT_RATELIMIT_INTERVAL, DEFAULT_RATELIMIT_BURST);

	return __ratelimit(&rs);
}

bool xendma_module_get(struct module *module)
{
	return try_module_get(module);
}

void xendma_module_put(struct module *module)
{
	module_put(module);
}

struct xendma_debugfs_file {
	struct dentry *dentry;
	const void *ctx;
	unsigned int id;
	xendma_debugfs_show_t show;
	xendma_debugfs_store_t store;
};

/* Enough for the segment list of a 256 MiB pool (1024 lines). */
#define XENDMA_DEBUGFS_BUF (128 * 1024)

static ssize_t xendma_debugfs_read(struct file *file, char __user *ubuf, size_t count,
				   loff_t *ppos)
{
	struct xendma_debugfs_file *f = file->private_data;
	ssize_t ret;
	long len;
	char *buf;

	if (!f->show)
		return -EINVAL;
	buf = kvmalloc(XENDMA_DEBUGFS_BUF, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	len = f->show(f->ctx, f->id, buf, XENDMA_DEBUGFS_BUF);
	if (len < 0)
		ret = len;
	else
		ret = simple_read_from_buffer(ubuf, count, ppos, buf,
					      min_t(size_t, len, XENDMA_DEBUGFS_BUF));
	kvfree(buf);
	return ret;
}

static ssize_t xendma_debugfs_write(struct file *file, const char __user *ubuf, size_t count,
				    loff_t *ppos)
{
	struct xendma_debugfs_file *f = file->private_data;
	char buf[128];
	int ret;

	if (!f->store)
		return -EINVAL;
	if (*ppos != 0 || count == 0 || count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	ret = f->store(f->ctx, f->id, buf, count);
	if (ret)
		return ret;
	*ppos += count;
	return count;
}

static const struct file_operations xendma_debugfs_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = xendma_debugfs_read,
	.write = xendma_debugfs_write,
	.llseek = default_llseek,
};

struct xendma_debugfs_file *xendma_debugfs_file_create(const char *name, struct dentry *parent,
							unsigned short mode, const void *ctx,
							unsigned int id,
							xendma_debugfs_show_t show,
							xendma_debugfs_store_t store)
{
	struct xendma_debugfs_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return ERR_PTR(-ENOMEM);
	f->ctx = ctx;
	f->id = id;
	f->show = show;
	f->store = store;
	f->dentry = debugfs_create_file(name, mode, parent, f, &xendma_debugfs_fops);
	if (IS_ERR(f->dentry)) {
		long err = PTR_ERR(f->dentry);

		kfree(f);
		return ERR_PTR(err);
	}
	return f;
}

void xendma_debugfs_file_remove(struct xendma_debugfs_file *file)
{
	/* Waits for readers and writers in progress (debugfs file proxy). */
	debugfs_remove(file->dentry);
	kfree(file);
}

struct dentry *xendma_debugfs_dir(const char *name, struct dentry *parent)
{
	return debugfs_create_dir(name, parent);
}

void xendma_debugfs_dir_remove(struct dentry *dir)
{
	debugfs_remove(dir);
}
