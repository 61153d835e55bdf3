// SPDX-License-Identifier: GPL-2.0
/*
 * Xen: the domain kind, the hypervisor version, p2m/m2p lookups, and XENMEM_exchange
 * of pages for machine-contiguous extents (and back).
 */
#include <linux/error-injection.h>
#include <linux/fault-inject.h>
#include <linux/mm.h>
#include <linux/vmstat.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <xen/page.h>
#include <xen/xen.h>
#include <xen/interface/xen.h>
#include <xen/interface/memory.h>
#include <xen/interface/version.h>

#include "helpers.h"

#ifdef CONFIG_XEN
#include <asm/xen/hypercall.h>
#include <asm/xen/page.h>
#endif

bool xendma_xen_domain(void)
{
	return xen_domain();
}

bool xendma_xen_pv_domain(void)
{
	return xen_pv_domain();
}

bool xendma_xen_initial_domain(void)
{
	return xen_initial_domain();
}

/* XENVER_version: major << 16 | minor, or -ENODEV outside Xen. */
int xendma_xen_version(void)
{
#ifdef CONFIG_XEN
	if (xen_domain())
		return HYPERVISOR_xen_version(XENVER_version, NULL);
#endif
	return -ENODEV;
}

unsigned long xendma_pfn_to_mfn(unsigned long pfn)
{
#ifdef CONFIG_XEN_PV
	if (xen_pv_domain())
		return pfn_to_mfn(pfn);
#endif
	return pfn;
}

unsigned long xendma_mfn_to_pfn(unsigned long mfn)
{
#ifdef CONFIG_XEN_PV
	if (xen_pv_domain())
		return mfn_to_pfn(mfn);
#endif
	return mfn;
}

#ifdef CONFIG_XEN_PV
/* Multicall batch for PTE updates (8 entries are 512 bytes of stack). */
#define XENDMA_MC_BATCH 8

/*
 * Points the linear-map PTEs of @n pages from @vaddr at @mfns[i] (or @first_mfn + i when @mfns
 * is NULL), or clears them (@zap). The TLBs of all CPUs are flushed with the last update of a
 * remap. Returns the number of updates Xen refused.
 */
static unsigned long xendma_set_ptes(unsigned long vaddr, unsigned long n, const xen_pfn_t *mfns,
				     unsigned long first_mfn, bool zap)
{
	struct multicall_entry mc[XENDMA_MC_BATCH];
	unsigned long i, j, k = 0, failed = 0;

	for (i = 0; i < n; i++, vaddr += PAGE_SIZE) {
		unsigned long mfn = mfns ? mfns[i] : first_mfn + i;
		pte_t pte = zap ? __pte_ma(0) : mfn_pte(mfn, PAGE_KERNEL);

		/* MULTI_update_va_mapping() without its tracepoint, which is not exported. */
		mc[k].op = __HYPERVISOR_update_va_mapping;
		mc[k].args[0] = vaddr;
		mc[k].args[1] = pte.pte;
		mc[k].args[2] = (!zap && i == n - 1) ? UVMF_TLB_FLUSH | UVMF_ALL : 0;
		k++;
		if (k < XENDMA_MC_BATCH && i != n - 1)
			continue;
		if (HYPERVISOR_multicall(mc, k))
			failed += k;
		else
			for (j = 0; j < k; j++)
				failed += mc[j].result != 0;
		k = 0;
	}
	return failed;
}

/* Records pfn -> mfn in the p2m; false if the p2m has no writable entry for @pfn. */
static bool xendma_set_p2m(unsigned long pfn, unsigned long mfn)
{
	if (pfn >= xen_p2m_size)
		return false;
	return !xen_safe_write_ulong(xen_p2m_addr + pfn, mfn);
}

/* Records mfn -> pfn in the m2p for @n frames; the number of updates Xen refused. */
static unsigned long xendma_set_m2p(unsigned long first_pfn, unsigned long n,
				    const xen_pfn_t *mfns, unsigned long first_mfn)
{
	struct mmu_update u[XENDMA_MC_BATCH];
	unsigned long i, k = 0, failed = 0;
	int done;

	for (i = 0; i < n; i++) {
		unsigned long mfn = mfns ? mfns[i] : first_mfn + i;

		u[k].ptr = ((u64)mfn << XEN_PAGE_SHIFT) | MMU_MACHPHYS_UPDATE;
		u[k].val = first_pfn + i;
		k++;
		if (k < XENDMA_MC_BATCH && i != n - 1)
			continue;
		done = 0;
		if (HYPERVISOR_mmu_update(u, k, &done, DOMID_SELF) || done != k)
			failed += k - done;
		k = 0;
	}
	return failed;
}

/* Maps @n pages from @pfn at @mfns[i] (or @first_mfn + i) in the PTEs, p2m and m2p. */
static int xendma_install_frames(unsigned long pfn, unsigned long n, const xen_pfn_t *mfns,
				 unsigned long first_mfn)
{
	unsigned long i, bad;

	bad = xendma_set_ptes((unsigned long)pfn_to_kaddr(pfn), n, mfns, first_mfn, false);
	for (i = 0; i < n; i++)
		bad += !xendma_set_p2m(pfn + i, mfns ? mfns[i] : first_mfn + i);
	bad += xendma_set_m2p(pfn, n, mfns, first_mfn);
	if (bad) {
		pr_err("xen_swiotlb_rs: %lu frame updates refused for pfns %#lx+%lu\n", bad, pfn, n);
		return -EIO;
	}
	return 0;
}

/* Clears the PTEs and p2m entries of @n pages from @pfn. */
static int xendma_zap_frames(unsigned long pfn, unsigned long n)
{
	unsigned long i, bad;

	bad = xendma_set_ptes((unsigned long)pfn_to_kaddr(pfn), n, NULL, 0, true);
	for (i = 0; i < n; i++)
		bad += !xendma_set_p2m(pfn + i, INVALID_P2M_ENTRY);
	return bad ? -EIO : 0;
}

/*
 * One XENMEM_exchange: @in_n extents of @in_order for @out_n of @out_order. True if all were
 * exchanged; *@rc gets Xen's result. A partial exchange is reported through *@partial (it cannot
 * happen with one extent on either side, which is all this file asks for).
 */
static bool xendma_exchange(xen_pfn_t *in, unsigned long in_n, unsigned int in_order,
			    xen_pfn_t *out, unsigned long out_n, unsigned int out_order,
			    unsigned int address_bits, long *rc, bool *partial)
{
	struct xen_memory_exchange x = {
		.in = {
			.nr_extents = in_n,
			.extent_order = in_order,
			.domid = DOMID_SELF,
		},
		.out = {
			.nr_extents = out_n,
			.extent_order = out_order,
			.address_bits = address_bits,
			.domid = DOMID_SELF,
		},
	};

	set_xen_guest_handle(x.in.extent_start, in);
	set_xen_guest_handle(x.out.extent_start, out);
	*rc = HYPERVISOR_memory_op(XENMEM_exchange, &x);
	*partial = x.nr_exchanged != 0 && x.nr_exchanged != in_n;
	return *rc == 0 && x.nr_exchanged == in_n;
}

/*
 * Both directions of an exchange for the 2^order pages from @page. To a contiguous extent: the
 * pages' n machine frames go in, one extent below 2^@bits comes out (its first frame in *@mfn).
 * Back: the extent goes in, n arbitrary frames come out. @list holds the n order-0 entries of
 * either side: the old machine frames going in, or the pfns the new frames go to (for a PV guest
 * an output entry names its pfn and Xen writes the mfn there).
 */
static int xendma_trade(struct page *page, unsigned int order, bool to_contig, unsigned int bits,
			u64 *mfn, gfp_t gfp)
{
	unsigned long n = 1UL << order, pfn = page_to_pfn(page), i;
	xen_pfn_t *list, single;
	bool partial = false, done = false;
	long rc = -EIO;

	if (!xen_pv_domain())
		return -EOPNOTSUPP;
	if (order > MAX_PAGE_ORDER || PageHighMem(page) ||
	    (to_contig && (bits < PAGE_SHIFT + order || bits > 64)))
		return -EINVAL;
	list = kmalloc_array(n, sizeof(*list), gfp);
	if (!list)
		return -ENOMEM;
	memset(page_address(page), 0, PAGE_SIZE << order);
	for (i = 0; i < n; i++)
		list[i] = to_contig ? pfn_to_mfn(pfn + i) : pfn + i;
	single = to_contig ? pfn : pfn_to_mfn(pfn);
	if (!xendma_zap_frames(pfn, n)) {
		if (to_contig)
			done = xendma_exchange(list, n, 0, &single, 1, order, bits, &rc, &partial);
		else
			done = xendma_exchange(&single, 1, order, list, n, 0, 0, &rc, &partial);
	}
	if (partial) {
		/* Frames went in and nothing usable came out: there is nothing to map. */
		pr_err("xen_swiotlb_rs: XENMEM_exchange of %lu frames half done (rc %ld): pages leaked\n",
		       n, rc);
		kfree(list);
		return -EIO;
	}
	/* Done: map what came out. Not done: put back what went in. */
	if (done == to_contig)
		i = xendma_install_frames(pfn, n, NULL, single);
	else
		i = xendma_install_frames(pfn, n, list, 0);
	kfree(list);
	if (i)
		return -EIO;
	if (done) {
		if (mfn)
			*mfn = single;
		return 0;
	}
	return rc < 0 && rc != -ENOMEM ? (int)rc : -ENOMEM;
}

#if defined(XENDMA_KUNIT) && IS_ENABLED(CONFIG_FAULT_INJECTION)
/*
 * Test builds: each exchange is a fault point of the calling task for fail-nth
 * (Documentation/fault-injection/fault-injection.rst), consulted in task context; fail_function
 * cannot do this on the test kernel, whose int3 kprobe handler runs as an NMI, where fail-nth is
 * not consulted. The probability stays 0, so only fail-nth fails an exchange; no report is
 * printed (the caller's errno and log say what happened).
 */
static struct fault_attr xendma_exchange_fault = FAULT_ATTR_INITIALIZER;

static bool xendma_exchange_fails(void)
{
	WRITE_ONCE(xendma_exchange_fault.verbose, 0);
	return should_fail(&xendma_exchange_fault, 1);
}
#else
static bool xendma_exchange_fails(void)
{
	return false;
}
#endif

int xendma_xen_exchange_contig(struct page *page, unsigned int order, unsigned int address_bits,
			       u64 *mfn, gfp_t gfp)
{
	if (xendma_exchange_fails())
		return -ENOMEM;
	return xendma_trade(page, order, true, address_bits, mfn, gfp);
}
/* An injected error is what Xen refusing the exchange looks like: nothing was done. */
ALLOW_ERROR_INJECTION(xendma_xen_exchange_contig, ERRNO);

int xendma_xen_exchange_back(struct page *page, unsigned int order, gfp_t gfp)
{
	if (xendma_exchange_fails())
		return -ENOMEM;
	return xendma_trade(page, order, false, 0, NULL, gfp);
}
ALLOW_ERROR_INJECTION(xendma_xen_exchange_back, ERRNO);

long xendma_xen_max_ram_page(void)
{
	if (!xen_domain())
		return -EOPNOTSUPP;
	return HYPERVISOR_memory_op(XENMEM_maximum_ram_page, NULL);
}

long xendma_xen_reservation(void)
{
	domid_t self = DOMID_SELF;

	if (!xen_domain())
		return -EOPNOTSUPP;
	return HYPERVISOR_memory_op(XENMEM_current_reservation, &self);
}
#else
int xendma_xen_exchange_contig(struct page *page, unsigned int order, unsigned int address_bits,
			       u64 *mfn, gfp_t gfp)
{
	return -EOPNOTSUPP;
}

int xendma_xen_exchange_back(struct page *page, unsigned int order, gfp_t gfp)
{
	return -EOPNOTSUPP;
}

long xendma_xen_reservation(void)
{
	return -EOPNOTSUPP;
}

long xendma_xen_max_ram_page(void)
{
	return -EOPNOTSUPP;
}
#endif

void xendma_page_set_xen_remapped(struct page *page)
{
	SetPageXenRemapped(page);
}

bool xendma_page_test_clear_xen_remapped(struct page *page)
{
	return TestClearPageXenRemapped(page);
}
