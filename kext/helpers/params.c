// SPDX-License-Identifier: GPL-2.0
/*
 * Module parameters of xen_swiotlb_rs (the 6.12 Rust module! macro has none).
 */
#include <linux/moduleparam.h>

#include "helpers.h"

/*
 * Module parameters of xen_swiotlb_rs (the 6.12 Rust `module!` macro has none).
 * Read by kext/params.rs.
 */
static unsigned int pool_mb = 64;
module_param(pool_mb, uint, 0444);
MODULE_PARM_DESC(pool_mb, "Bounce pool size in MiB (default 64; less is taken if memory is short)");

static unsigned int dma_bits = 32;
module_param(dma_bits, uint, 0444);
MODULE_PARM_DESC(dma_bits, "The pool lies below 2^dma_bits (default 32)");

static unsigned int pool_max_mb;
module_param(pool_max_mb, uint, 0444);
MODULE_PARM_DESC(pool_max_mb, "Grow the pool on demand up to this many MiB (default 0: no growth)");

static unsigned int segment_kb = 256;
module_param(segment_kb, uint, 0444);
MODULE_PARM_DESC(segment_kb,
		 "Machine-contiguous segment size in KiB, a power of two from 256 to 4096; also the largest mapping (default 256)");

/* Not static: the mapping path reads it directly (kext/params.rs), without a call. */
bool xendma_param_force_bounce;
module_param_named(force_bounce, xendma_param_force_bounce, bool, 0644);
MODULE_PARM_DESC(force_bounce, "Bounce every mapping of attached devices (default N; writable)");

static char *attach;
module_param(attach, charp, 0444);
MODULE_PARM_DESC(attach, "Comma-separated PCI devices to attach at load (0000:00:04.0,...)");

unsigned int xendma_swiotlb_pool_mb(void)
{
	return pool_mb;
}

unsigned int xendma_swiotlb_dma_bits(void)
{
	return dma_bits;
}

unsigned int xendma_swiotlb_pool_max_mb(void)
{
	return pool_max_mb;
}

unsigned int xendma_swiotlb_segment_kb(void)
{
	return segment_kb;
}

const char *xendma_swiotlb_attach(void)
{
	return attach ? attach : "";
}
