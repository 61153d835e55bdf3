/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers of kext/mmu_notifier.rs and kext/mm.rs: the static inline parts of the mmu interval
 * notifier and HMM interfaces, and the mm reference counts.
 */
#ifndef XENDMA_ODP_HELPERS_H
#define XENDMA_ODP_HELPERS_H

#include <linux/types.h>

struct mm_struct;
struct mmu_interval_notifier;
struct mmu_notifier_range;
struct page;

/* current->mm with a reference on the structure (mmgrab), or NULL for a kernel thread. */
struct mm_struct *xendma_odp_mm_grab_current(void);
void xendma_odp_mmdrop(struct mm_struct *mm);

unsigned long xendma_odp_range_start(const struct mmu_notifier_range *range);
unsigned long xendma_odp_range_end(const struct mmu_notifier_range *range);
bool xendma_odp_range_blockable(const struct mmu_notifier_range *range);
int xendma_odp_range_event(const struct mmu_notifier_range *range);

void xendma_odp_set_seq(struct mmu_interval_notifier *sub, unsigned long cur_seq);
bool xendma_odp_read_retry(struct mmu_interval_notifier *sub, unsigned long seq);

/*
 * hmm_range_fault() of [start, end) of the notifier's mm, under its mmap read lock, while the
 * address space is kept alive with mmget_not_zero() (-EFAULT once the process has exited).
 * pfns has (end - start) / PAGE_SIZE entries; default_flags are HMM_PFN_REQ_*.
 */
int xendma_odp_hmm_fault(struct mmu_interval_notifier *sub, unsigned long seq,
			 unsigned long start, unsigned long end, unsigned long *pfns,
			 unsigned long default_flags);

struct page *xendma_odp_hmm_pfn_to_page(unsigned long hmm_pfn);
/* __ratelimit() of the module's warnings: 10 per 5 s. */
/*
 * Test builds: a user address space for the KUnit cases. capture() takes a reference on the
 * address space of the process loading the module (insmod), release() drops it; use() and
 * unuse() attach it to the calling kernel thread (kthread_use_mm), mmap() maps len bytes of
 * anonymous read-write memory at addr (MAP_FIXED unless addr is 0) and returns the address or a
 * negative errno, munmap() unmaps.
 */
void xendma_odp_test_mm_capture(void);
void xendma_odp_test_mm_release(void);
int xendma_odp_test_mm_use(void);
void xendma_odp_test_mm_unuse(void);
long xendma_odp_test_mmap(unsigned long addr, unsigned long len);
int xendma_odp_test_munmap(unsigned long addr, unsigned long len);
#include "../../include/odp_umem.h"

/* The table odp_abi.c calls through (kext/odp_abi.rs fills it with Rust trampolines). */
struct xendma_odp_abi_ops {
	void *(*get)(struct device *dev, unsigned long start, size_t len, unsigned int page_shift,
		     unsigned int access, odp_umem_invalidate_t invalidate, void *priv, int *err);
	int (*map_and_lock)(void *umem, unsigned long addr, size_t len, unsigned int access);
	void (*unlock)(void *umem);
	u64 (*dma_addr)(void *umem, unsigned long addr);
	int (*unmap)(void *umem, unsigned long addr, size_t len);
	int (*sync)(void *umem, unsigned long addr, size_t len, bool for_cpu);
	void (*release)(void *umem);
};
void xendma_odp_abi_set_ops(const struct xendma_odp_abi_ops *ops);

#endif
