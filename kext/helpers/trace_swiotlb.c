// SPDX-License-Identifier: GPL-2.0
/*
 * xen_swiotlb_rs's trace events (trace_swiotlb.h), defined here, and the wrappers the Rust code
 * calls (kext/trace.rs).
 */
#define CREATE_TRACE_POINTS
#include "trace_swiotlb.h"
#undef CREATE_TRACE_POINTS

/*
 * The bounced event's static key count, which the mapping path reads (kext/trace.rs) to call
 * xendma_trace_bounced() only while the event is enabled, as trace_bounced()'s static branch does.
 */
#ifdef CONFIG_TRACEPOINTS
/*
 * The tracepoint's key is a struct static_key in 6.12 and a struct static_key_false (which begins
 * with one) in 7.x; either way its first member is the atomic_t count.
 */
const atomic_t *const xendma_trace_bounced_key = (const atomic_t *)&__tracepoint_bounced.key;
#else
static const atomic_t xendma_trace_off = ATOMIC_INIT(0);
const atomic_t *const xendma_trace_bounced_key = &xendma_trace_off;
#endif

void xendma_trace_bounced(struct device *dev, u64 phys, u64 bounce, size_t size, int dir,
			  unsigned int reason)
{
	trace_bounced(dev, phys, bounce, size, dir, reason);
}

void xendma_trace_map_failed(struct device *dev, size_t size, unsigned int reason, u64 used_slots,
			     u64 slots)
{
	trace_map_failed(dev, size, reason, used_slots, slots);
}

void xendma_trace_pool_grow(u64 bytes, bool worker, unsigned int min_bits, unsigned int max_bits,
			    u64 duration_us, u64 pool_bytes)
{
	trace_pool_grow(bytes, worker, min_bits, max_bits, duration_us, pool_bytes);
}

void xendma_trace_attach(const char *dev, int ret)
{
	trace_attach(dev, ret);
}

void xendma_trace_detach(const char *dev, int ret)
{
	trace_detach(dev, ret);
}
