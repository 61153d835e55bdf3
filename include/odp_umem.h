/* SPDX-License-Identifier: GPL-2.0 */
/*
 * odp_umem: On-Demand-Paging user memory for devices, the C API for RDMA drivers.
 *
 * A umem mirrors [start, start + len) of the calling process's address space for a device.
 * Nothing is pinned: pages are faulted in and DMA-mapped on demand, and unmapped when the
 * process's mapping changes (an mmu interval notifier), after which the driver's invalidate
 * callback runs. A typical page-fault handler of a driver:
 *
 *	err = odp_umem_map_and_lock(umem, addr, len, ODP_UMEM_READ | ODP_UMEM_WRITE);
 *	if (err)
 *		return err;
 *	for (each page of the range)
 *		program_device(odp_umem_dma_addr(umem, page_addr));
 *	odp_umem_unlock(umem);
 *
 * and its invalidate callback stops the device from using [start, end) (zapping its page table
 * entries) before returning. The callback is called with the umem locked, so it must not call
 * any odp_umem function on the same umem. All functions may sleep. While the umem is locked,
 * do not touch the process's memory (copy_to_user(), get_user_pages()): a fault there may need
 * an invalidation of the umem, which waits for the unlock.
 *
 * The pages are streaming DMA mappings (Documentation/core-api/dma-api.rst), and the DMA path
 * may bounce them: a device with a narrow DMA mask, swiotlb=force, or a Xen PV guest whose page
 * lies above the mask in machine memory then reads and writes a bounce buffer, not the process's
 * page. Ownership passes as in the DMA API, with the umem locked:
 *
 *	odp_umem_map_and_lock(umem, addr, len, access);
 *	odp_umem_sync_for_device(umem, addr, len);	(the CPU wrote since the page was mapped)
 *	... the device reads or writes [addr, addr + len) ...
 *	odp_umem_sync_for_cpu(umem, addr, len);	(after the device wrote, before the CPU reads)
 *	odp_umem_unlock(umem);
 *
 * A page is copied to its bounce buffer when it is mapped, so a device that only reads what the
 * process wrote before the fault needs no sync_for_device. Unmapping (an invalidation, unmap,
 * release) does NOT copy a bounce buffer back: a copy at that time would overwrite what the
 * process wrote after the device's last transfer. A device write that is not followed by
 * odp_umem_sync_for_cpu() of the bytes it wrote is therefore lost whenever the page bounced.
 *
 * Documentation/odp-umem.rst describes the design.
 */
#ifndef ODP_UMEM_H
#define ODP_UMEM_H

#include <linux/types.h>

struct device;
struct odp_umem;

/* Access rights (the device reads, the device writes). READ is always required. */
#define ODP_UMEM_READ 1U
#define ODP_UMEM_WRITE 2U

/*
 * Called with the umem locked before the pages of [start, end) are DMA-unmapped: on return the
 * device must no longer access them, as their bus addresses may be reused at once. Called from
 * the mmu notifier (possibly while the process exits), and from odp_umem_map_and_lock in the
 * caller's task when a page's mapping must be replaced (its CPU mapping gained write access
 * without an invalidation, e.g. a clean MAP_SHARED file page). It may sleep, must not allocate
 * memory with GFP_KERNEL and must not call into odp_umem for this umem.
 */
typedef void (*odp_umem_invalidate_t)(void *priv, unsigned long start, unsigned long end);

/*
 * odp_umem_get - register [start, start + len) of current->mm for dev.
 * @page_shift: 12 (4 KiB) or 21 (2 MiB: the range must be mapped by transparent huge pages)
 * @access: ODP_UMEM_READ, optionally | ODP_UMEM_WRITE
 * @invalidate: may be NULL
 *
 * Returns the umem or an ERR_PTR: -EINVAL (misaligned or empty range, bad page size or access,
 * NULL device, no mm), -EOVERFLOW (the range wraps or leaves user space), -E2BIG (over 1 GiB),
 * -ENOMEM. The mm structure is referenced, not the address space: after the process exits,
 * map_and_lock fails with -EFAULT.
 */
struct odp_umem *odp_umem_get(struct device *dev, unsigned long start, size_t len,
			      unsigned int page_shift, unsigned int access,
			      odp_umem_invalidate_t invalidate, void *priv);

/*
 * odp_umem_map_and_lock - fault in and DMA-map [addr, addr + len) for access, and lock the
 * umem. On success (0) the pages stay mapped, at the addresses odp_umem_dma_addr() gives, until
 * odp_umem_unlock(); invalidations wait for the unlock. Errors: -ERANGE (outside the umem),
 * -EPERM (write access to a read-only umem), -EFAULT (a hole, or the process exited), -EPERM or
 * -EFAULT (a write to read-only memory), -EINVAL (2 MiB umem over base pages, bad arguments),
 * -ENOMEM (a page the DMA path cannot map), -EBUSY (invalidations kept colliding). The umem is
 * not locked on error. Calling it again before odp_umem_unlock() deadlocks (lockdep says so).
 */
int odp_umem_map_and_lock(struct odp_umem *umem, unsigned long addr, size_t len,
			  unsigned int access);

/* odp_umem_unlock - release the lock odp_umem_map_and_lock() took (same task). */
void odp_umem_unlock(struct odp_umem *umem);

/*
 * odp_umem_dma_addr - the bus address of the byte at addr; only the task holding the lock may
 * call it. DMA_MAPPING_ERROR if the umem is not locked or the page is not mapped.
 */
dma_addr_t odp_umem_dma_addr(struct odp_umem *umem, unsigned long addr);

/*
 * odp_umem_unmap - unmap the pages of [addr, addr + len) (the device gives them up). Must not
 * be called while locked. -ERANGE outside the umem.
 */
int odp_umem_unmap(struct odp_umem *umem, unsigned long addr, size_t len);

/*
 * odp_umem_sync_for_cpu - make what the device wrote to [addr, addr + len) visible to the CPU
 * (dma_sync_single_range_for_cpu() on each page; only those bytes are copied back from a bounce
 * buffer). odp_umem_sync_for_device - make what the CPU wrote there visible to the device.
 *
 * Only the task holding the lock may call them, on pages the umem has mapped (any mapped page
 * of the umem, not only the ones of the last odp_umem_map_and_lock()). Errors: -EINVAL (not
 * locked, len 0), -EOVERFLOW (the range wraps), -ERANGE (outside the umem), -EFAULT (a page of
 * the range is not mapped; the pages before it were synced). A sync_for_cpu of a page the
 * device may only read is allowed and copies nothing.
 */
int odp_umem_sync_for_cpu(struct odp_umem *umem, unsigned long addr, size_t len);
int odp_umem_sync_for_device(struct odp_umem *umem, unsigned long addr, size_t len);

/*
 * odp_umem_release - unmap everything, remove the notifier and free the umem (unlocked). NULL and
 * an ERR_PTR from odp_umem_get are ignored, so an error path may release what it got.
 */
void odp_umem_release(struct odp_umem *umem);

#endif
