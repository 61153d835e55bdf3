// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit support for the test builds (compiled only with XENDMA_KUNIT): the lane's
 * expected Xen domain kind, skipping a case, and C layout facts checked against Rust.
 */
#include <linux/cpu.h>
#include <linux/dma-map-ops.h>
#include <linux/hmm.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/sched.h>
#include <linux/stddef.h>
#include <xen/interface/xen.h>
#include <xen/interface/memory.h>
#include <kunit/test.h>

#include "helpers.h"

#define XENDMA_SIZE(type) { "sizeof(struct " #type ")", sizeof(struct type) }
#define XENDMA_OFF(type, field) { "offsetof(struct " #type ", " #field ")", offsetof(struct type, field) }

const struct xendma_layout xendma_layouts[] = {
	XENDMA_SIZE(dma_map_ops),
	XENDMA_OFF(dma_map_ops, alloc),
	XENDMA_OFF(dma_map_ops, free),
	XENDMA_OFF(dma_map_ops, mmap),
	XENDMA_OFF(dma_map_ops, map_page),
	XENDMA_OFF(dma_map_ops, unmap_page),
	XENDMA_OFF(dma_map_ops, map_sg),
	XENDMA_OFF(dma_map_ops, unmap_sg),
	XENDMA_OFF(dma_map_ops, sync_single_for_cpu),
	XENDMA_OFF(dma_map_ops, sync_single_for_device),
	XENDMA_OFF(dma_map_ops, sync_sg_for_cpu),
	XENDMA_OFF(dma_map_ops, sync_sg_for_device),
	XENDMA_OFF(dma_map_ops, dma_supported),
	XENDMA_OFF(dma_map_ops, get_required_mask),
	XENDMA_OFF(dma_map_ops, max_mapping_size),
	XENDMA_SIZE(hmm_range),
	XENDMA_OFF(hmm_range, notifier),
	XENDMA_OFF(hmm_range, notifier_seq),
	XENDMA_OFF(hmm_range, start),
	XENDMA_OFF(hmm_range, end),
	XENDMA_OFF(hmm_range, hmm_pfns),
	XENDMA_OFF(hmm_range, default_flags),
	XENDMA_OFF(hmm_range, pfn_flags_mask),
	XENDMA_OFF(hmm_range, dev_private_owner),
	XENDMA_SIZE(miscdevice),
	XENDMA_OFF(miscdevice, minor),
	XENDMA_OFF(miscdevice, name),
	XENDMA_OFF(miscdevice, fops),
	XENDMA_OFF(miscdevice, this_device),
	XENDMA_OFF(miscdevice, mode),
	XENDMA_SIZE(pci_driver),
	XENDMA_OFF(pci_driver, name),
	XENDMA_OFF(pci_driver, id_table),
	XENDMA_OFF(pci_driver, probe),
	XENDMA_OFF(pci_driver, remove),
	XENDMA_OFF(pci_driver, driver),
	XENDMA_OFF(pci_driver, dynids),
	XENDMA_OFF(pci_driver, driver_managed_dma),
	XENDMA_SIZE(xen_memory_reservation),
	XENDMA_OFF(xen_memory_reservation, extent_start),
	XENDMA_OFF(xen_memory_reservation, nr_extents),
	XENDMA_OFF(xen_memory_reservation, extent_order),
	XENDMA_OFF(xen_memory_reservation, address_bits),
	XENDMA_OFF(xen_memory_reservation, domid),
	XENDMA_SIZE(xen_memory_exchange),
	XENDMA_OFF(xen_memory_exchange, in),
	XENDMA_OFF(xen_memory_exchange, out),
	XENDMA_OFF(xen_memory_exchange, nr_exchanged),
	{ NULL, 0 },
};

static char *expect_xen = "";
module_param(expect_xen, charp, 0444);
MODULE_PARM_DESC(expect_xen, "test builds: the Xen domain kind the lane runs in (none, pv)");

const char *xendma_expected_xen(void)
{
	return expect_xen;
}

static unsigned int init_fail_nth;
module_param(init_fail_nth, uint, 0444);
MODULE_PARM_DESC(init_fail_nth, "test builds: the loading task's fail-nth when init began (fault_inject)");

void xendma_kunit_note_init(void)
{
#ifdef CONFIG_FAULT_INJECTION
	init_fail_nth = READ_ONCE(current->fail_nth);
#endif
}

void xendma_kunit_skip(struct kunit *test, const char *reason)
{
	kunit_mark_skipped(test, "%s", reason);
}

unsigned int xendma_kunit_on_each_cpu(void (*fn)(void *info), void *info)
{
	unsigned int n;

	cpus_read_lock();
	on_each_cpu(fn, info, 1);
	n = num_online_cpus();
	cpus_read_unlock();
	return n;
}
