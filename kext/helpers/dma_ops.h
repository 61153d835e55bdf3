/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C side of the dma_map_ops glue (kext/dma/ops.rs) and of the small kernel
 * services the xen_swiotlb_rs module needs: irq-saving spinlocks, debugfs
 * files backed by Rust callbacks, device lookup and driver rebinding.
 */
#ifndef XENDMA_DMA_OPS_HELPERS_H
#define XENDMA_DMA_OPS_HELPERS_H

#include <linux/dma-direction.h>
#include <linux/types.h>

struct device;
struct dentry;
struct dma_map_ops;
struct module;
struct scatterlist;
struct sg_table;
struct spinlock;
struct vm_area_struct;

/* Device state read and written by the ops glue. */
const struct dma_map_ops *xendma_dev_dma_ops(struct device *dev);
void xendma_dev_set_dma_ops(struct device *dev, const struct dma_map_ops *ops);
/* Whether the DMA API ignores dev->dma_ops for this device (it uses iommu-dma). */
bool xendma_dev_uses_iommu_dma(struct device *dev);
bool xendma_dev_has_driver(struct device *dev);

const char *xendma_dev_name(struct device *dev);
struct device *xendma_pci_find(const char *name);
int xendma_device_release_driver(struct device *dev);
int xendma_device_attach(struct device *dev);

/* Generic table entries, written in C over the table's own map_page/unmap_page/sync ops. */
int xendma_ops_map_sg(struct device *dev, struct scatterlist *sgl, int nents, enum dma_data_direction dir,
		      unsigned long attrs);
void xendma_ops_unmap_sg(struct device *dev, struct scatterlist *sgl, int nents, enum dma_data_direction dir,
			 unsigned long attrs);
void xendma_ops_sync_sg_for_cpu(struct device *dev, struct scatterlist *sgl, int nents, enum dma_data_direction dir);
void xendma_ops_sync_sg_for_device(struct device *dev, struct scatterlist *sgl, int nents,
				   enum dma_data_direction dir);
int xendma_ops_mmap(struct device *dev, struct vm_area_struct *vma, void *cpu_addr,
		    u64 dma_addr, size_t size, unsigned long attrs);
int xendma_ops_get_sgtable(struct device *dev, struct sg_table *sgt, void *cpu_addr,
			   u64 dma_addr, size_t size, unsigned long attrs);

/* Memory. */
void *xendma_phys_to_virt(u64 phys);
struct page *xendma_virt_to_page(const void *addr);
u64 xendma_ram_end(void);

/* Spinlocks taken with interrupts disabled (DMA ops may run in hard interrupt context). */
unsigned long xendma_spin_lock_irqsave(struct spinlock *lock);
void xendma_spin_unlock_irqrestore(struct spinlock *lock, unsigned long flags);
bool xendma_spin_trylock_irqsave(struct spinlock *lock, unsigned long *flags);
void xendma_spin_assert_held(struct spinlock *lock);
unsigned int xendma_this_cpu(void);
unsigned int xendma_possible_cpus(void);
bool xendma_warn_ratelimit(void);

/* Module references. */
bool xendma_module_get(struct module *module);
void xendma_module_put(struct module *module);

/* debugfs files whose contents come from Rust: show fills buf (returns length or -errno),
 * store parses a write (returns 0 or -errno). */
typedef long (*xendma_debugfs_show_t)(const void *ctx, unsigned int id, char *buf, size_t len);
typedef int (*xendma_debugfs_store_t)(const void *ctx, unsigned int id, const char *buf,
				      size_t len);
struct xendma_debugfs_file;
struct xendma_debugfs_file *xendma_debugfs_file_create(const char *name, struct dentry *parent,
							unsigned short mode, const void *ctx,
							unsigned int id,
							xendma_debugfs_show_t show,
							xendma_debugfs_store_t store);
void xendma_debugfs_file_remove(struct xendma_debugfs_file *file);
struct dentry *xendma_debugfs_dir(const char *name, struct dentry *parent);
void xendma_debugfs_dir_remove(struct dentry *dir);

/* Attributes of the calling module's /sys/module/<name>/ directory, served like the debugfs
 * files (the show buffer is one page). */
struct xendma_sysfs_file;
struct xendma_sysfs_file *xendma_sysfs_file_create(const char *name, unsigned short mode,
						    const void *ctx, unsigned int id,
						    xendma_debugfs_show_t show,
						    xendma_debugfs_store_t store);
void xendma_sysfs_file_remove(struct xendma_sysfs_file *file);

/* xen_swiotlb_rs module parameters (defined in kext/helpers/params.c, linked by xen_swiotlb_rs only). */
unsigned int xendma_swiotlb_pool_mb(void);
unsigned int xendma_swiotlb_dma_bits(void);
unsigned int xendma_swiotlb_pool_max_mb(void);
unsigned int xendma_swiotlb_segment_kb(void);
extern bool xendma_param_force_bounce;
const char *xendma_swiotlb_attach(void);

#endif
