// SPDX-License-Identifier: GPL-2.0
/*
 * mmu interval notifiers, hmm_range_fault and mm references for odp_umem.
 */
#include <linux/error-injection.h>
#include <linux/highmem.h>
#include <linux/hmm.h>
#include <linux/mman.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/mm.h>

#include "helpers.h"

/*
 * logic/odp.rs decodes hmm_range_fault's words in one layout, 6.12's: VALID, WRITE and ERROR in
 * bits 63..61, the map order in the 5 bits from 56, the pfn below. The flags are where they
 * always were; 7.x put three more flags below them and moved the order down to bit 53, so the
 * words are rewritten into that layout (xendma_odp_hmm_fault) before Rust reads them.
 */
#define XENDMA_HMM_ORDER_SHIFT 56
#define XENDMA_HMM_PFN_MASK ((1UL << XENDMA_HMM_ORDER_SHIFT) - 1)
static_assert(HMM_PFN_VALID == 1UL << 63);
static_assert(HMM_PFN_WRITE == 1UL << 62);
static_assert(HMM_PFN_ERROR == 1UL << 61);
static_assert(HMM_PFN_ORDER_SHIFT <= XENDMA_HMM_ORDER_SHIFT);
static_assert(HMM_PFN_REQ_FAULT == HMM_PFN_VALID);
static_assert(HMM_PFN_REQ_WRITE == HMM_PFN_WRITE);

struct mm_struct *xendma_odp_mm_grab_current(void)
{
	struct mm_struct *mm = current->mm;

	if (mm)
		mmgrab(mm);
	return mm;
}

void xendma_odp_mmdrop(struct mm_struct *mm)
{
	mmdrop(mm);
}

unsigned long xendma_odp_range_start(const struct mmu_notifier_range *range)
{
	return range->start;
}

unsigned long xendma_odp_range_end(const struct mmu_notifier_range *range)
{
	return range->end;
}

bool xendma_odp_range_blockable(const struct mmu_notifier_range *range)
{
	return mmu_notifier_range_blockable(range);
}

int xendma_odp_range_event(const struct mmu_notifier_range *range)
{
	return range->event;
}

void xendma_odp_set_seq(struct mmu_interval_notifier *sub, unsigned long cur_seq)
{
	mmu_interval_set_seq(sub, cur_seq);
}

bool xendma_odp_read_retry(struct mmu_interval_notifier *sub, unsigned long seq)
{
	return mmu_interval_read_retry(sub, seq);
}

int xendma_odp_hmm_fault(struct mmu_interval_notifier *sub, unsigned long seq,
			 unsigned long start, unsigned long end, unsigned long *pfns,
			 unsigned long default_flags)
{
	struct mm_struct *mm = sub->mm;
	struct hmm_range range = {
		.notifier = sub,
		.notifier_seq = seq,
		.start = start,
		.end = end,
		.hmm_pfns = pfns,
		.default_flags = default_flags,
		.pfn_flags_mask = 0,
	};
	int ret;

	if (!mmget_not_zero(mm))
		return -EFAULT;
	mmap_read_lock(mm);
	ret = hmm_range_fault(&range);
	mmap_read_unlock(mm);
	mmput(mm);
	if (!ret && HMM_PFN_ORDER_SHIFT != XENDMA_HMM_ORDER_SHIFT) {
		unsigned long i, n = (end - start) >> PAGE_SHIFT;

		for (i = 0; i < n; i++) {
			unsigned long w = pfns[i];

			pfns[i] = (w & (HMM_PFN_VALID | HMM_PFN_WRITE | HMM_PFN_ERROR)) |
				  ((unsigned long)hmm_pfn_to_map_order(w) << XENDMA_HMM_ORDER_SHIFT) |
				  (w & ~HMM_PFN_FLAGS);
		}
	}
	return ret;
}
/* An injected error is a failed hmm_range_fault (-EFAULT, -EBUSY, -ENOMEM, ...). */
ALLOW_ERROR_INJECTION(xendma_odp_hmm_fault, ERRNO);

/* A word as xendma_odp_hmm_fault returns it (with VALID set) to its page. */
struct page *xendma_odp_hmm_pfn_to_page(unsigned long word)
{
	return pfn_to_page(word & XENDMA_HMM_PFN_MASK);
}

/* Test builds: the address space the KUnit cases borrow (kext/mm.rs, TestMm). */
#ifdef XENDMA_KUNIT
#include <linux/kthread.h>

static struct mm_struct *xendma_odp_test_mm;

void xendma_odp_test_mm_capture(void)
{
	struct mm_struct *mm = current->mm;

	if (mm && mmget_not_zero(mm))
		xendma_odp_test_mm = mm;
}

void xendma_odp_test_mm_release(void)
{
	if (xendma_odp_test_mm)
		mmput(xendma_odp_test_mm);
	xendma_odp_test_mm = NULL;
}

int xendma_odp_test_mm_use(void)
{
	if (!xendma_odp_test_mm)
		return -ENOENT;
	if (current->mm || !(current->flags & PF_KTHREAD))
		return -EBUSY;
	kthread_use_mm(xendma_odp_test_mm);
	return 0;
}

void xendma_odp_test_mm_unuse(void)
{
	kthread_unuse_mm(xendma_odp_test_mm);
}

long xendma_odp_test_mmap(unsigned long addr, unsigned long len)
{
	return vm_mmap(NULL, addr, len, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE | (addr ? MAP_FIXED : 0), 0);
}

int xendma_odp_test_munmap(unsigned long addr, unsigned long len)
{
	return vm_munmap(addr, len);
}
#endif
